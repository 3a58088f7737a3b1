"""Randomisation journeys, clicked through in a real browser: a researcher randomises a consented family and
lands on its receipt, a blinded assessor opens it and sees no arm, the principal investigator breaks the blind for
her (through a confirmation page), a data manager generates (through a confirmation page with the design's
predictability) and verifies a site's allocation list, a list that fails verification stops randomisation until a
data manager and the PI have recorded what was found, and the PI follows recruitment. The journeys this issue
changed or added run in both languages (Norwegian and English browsers).

Expected texts are read from the catalogue with gettext, as in test_enrolment_journeys.py (whose helpers
these tests share): where a string has no Norwegian text yet, gettext gives the English one, and so does
the page, so the journeys pass before and after the translations are written.
"""

import re

import pytest
from django.utils import formats, translation
from playwright.sync_api import Page, expect

from families.models import Family, FamilyStatus
from families.tests.factories import family_in_state
from randomization import lists, sequence, services
from randomization.models import Allocation, AllocationAnnotation, AllocationEntry, AllocationList, Arm, Unblinding
from randomization.tests.factories import ready_to_randomise
from randomization.tests.tampering import trigger_off
from tests.browser.conftest import NORWEGIAN_BROWSER
from tests.browser.test_enrolment_journeys import field, status_badge
from tests.test_blinding import arm_traces

pytestmark = pytest.mark.browser

# The browser's language for these journeys, and the catalogue their expected texts come from.
LOCALE = NORWEGIAN_BROWSER
LANGUAGE = "nb" if LOCALE.startswith("nb") else "en"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def nb(text) -> str:
    """What this module's user reads for `text` (a message id or a lazy label), in LOCALE's language."""
    return say(LANGUAGE, text)


def say(language: str, text) -> str:
    """What a user of a `language` browser reads for `text` (a message id or a lazy label)."""
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


BROWSERS = {"nb": NORWEGIAN_BROWSER, "en": "en-GB"}


@pytest.fixture(params=list(BROWSERS))
def language(request) -> str:
    """The journey runs twice: in a Norwegian browser and in an English one."""
    return request.param


def percentage(language: str, share: float) -> str:
    """A percentage as the page writes it: "70,3 %" in Norwegian, "70.3%" in English."""
    with translation.override(language):
        return translation.gettext("%(percent)s%%") % {"percent": formats.number_format(round(share * 100, 1), 1)}


def arm_label(arm: str, language: str = LANGUAGE) -> str:
    return say(language, Arm(arm).label)


def family_url(family: Family) -> str:
    return f"/families/{family.study_id}/"


def expect_on_family_page(page: Page, study_id: str, language: str = LANGUAGE) -> None:
    expect(page).to_have_url(re.compile(rf"/families/{re.escape(study_id)}/$"))
    expect(page.locator("h1.study-id")).to_have_text(study_id)
    expect(page.locator("html")).to_have_attribute("lang", language)


def open_family(page: Page, family: Family, language: str = LANGUAGE) -> None:
    page.get_by_role("link", name=family.study_id, exact=True).click()
    expect_on_family_page(page, family.study_id, language)


def confirm_label(language: str, family: Family) -> str:
    """The randomise form's tick box: the researcher checks the family and its site."""
    text = say(language, "I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s).")
    return text % {"study_id": family.study_id, "site": family.site.name, "code": family.site.code}


def confirmation(page: Page):
    return page.locator("[data-confirmation]")


@pytest.fixture
def consented(oei, alice, dina) -> Family:
    """A consented family at Øvre Eiker with its baseline recorded (test_followup_journeys.py shows the refusal
    without it), whose site has its sealed allocation list."""
    lists.allocation_list_generate(site=oei, generated_by=dina)
    return ready_to_randomise(oei, by=alice)


@pytest.fixture
def randomised(consented, alice) -> Allocation:
    return services.family_randomise(family=consented, confirmed_site=consented.site, randomised_by=alice).allocation


def test_it_randomises_a_consented_family_once_and_lands_on_its_receipt(
    open_page, log_in, alice, oei, consented, results_dir, language
):
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)
    open_family(page, consented, language)
    page.get_by_role("link", name=say(language, "Randomise"), exact=True).click()

    expect(page).to_have_url(re.compile(rf"{re.escape(family_url(consented))}randomise/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(consented.study_id)
    expect(page.locator("[data-confirm-study-id]")).to_have_text(consented.study_id)
    expect(page.locator("[data-confirm-site]")).to_have_text(f"{oei.name} ({oei.code})")
    summary = page.locator("[data-eligibility-summary]")
    expect(summary).to_contain_text(say(language, "Eligible"))
    expect(summary).to_contain_text(consented.consent.form_version)
    expect(summary).to_contain_text(consented.consent.obtained_by.get_full_name())
    page.get_by_role("button", name=say(language, "Randomise now")).click()

    expect(page.get_by_role("alert")).to_contain_text(say(language, "Tick the box to confirm the family and its site."))
    assert not Allocation.objects.exists(), "nothing is drawn before the researcher confirms"
    confirm = say(
        language, "I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s)."
    )
    page.get_by_label(field(confirm % {"study_id": consented.study_id, "site": oei.name, "code": oei.code})).check()
    submitted_form = page.locator("main form").evaluate("(form) => Object.fromEntries(new FormData(form))")
    page.get_by_role("button", name=say(language, "Randomise now")).click()

    receipt_url = f"{family_url(consented)}randomisation-receipt/"
    expect(page).to_have_url(re.compile(rf"{re.escape(receipt_url)}$"))
    allocation = Allocation.objects.get(family=consented)
    expect(page.get_by_role("status")).to_contain_text(
        say(language, "%(study_id)s is randomised to: %(arm)s.")
        % {"study_id": consented.study_id, "arm": arm_label(allocation.arm, language)}
    )
    receipt = page.locator("[data-receipt]")
    expect(receipt.locator("[data-randomisation-id]")).to_have_text("OEI-R001")
    expect(receipt.locator("[data-arm]")).to_have_text(arm_label(allocation.arm, language))
    expect(receipt).to_contain_text(consented.study_id)
    expect(receipt).to_contain_text(alice.get_full_name())
    expect(page.locator("html")).to_have_attribute("lang", language)
    page.screenshot(path=results_dir / f"journey-randomise-receipt-{language}.png", full_page=True)

    # The confirmation page opened again (signed-in pages are never kept by the browser: Cache-Control no-store,
    # so "back" loads it anew): the family is randomised, so the page leads to its receipt; and the form sent
    # again (a second tab, a flaky network's retry) draws nothing more and lands on the same receipt.
    page.goto(f"{family_url(consented)}randomise/")
    expect(page).to_have_url(re.compile(rf"{re.escape(receipt_url)}$"))
    landed = page.evaluate(
        """async ([url, fields]) => {
            const body = new FormData();
            Object.entries(fields).forEach(([name, value]) => body.append(name, value));
            const answer = await fetch(url, {method: "POST", body});
            return [answer.status, new URL(answer.url).pathname];
        }""",
        [f"{family_url(consented)}randomise/", submitted_form],
    )
    assert landed == [200, receipt_url], "the form sent again leads to the receipt, not a second draw"
    assert Allocation.objects.count() == 1
    assert AllocationList.objects.get(site=oei).used == 1


def test_it_shows_a_blinded_assessor_that_the_family_is_randomised_but_not_its_arm(
    open_page, log_in, carol, randomised
):
    family = randomised.family
    page = open_page(locale=LOCALE)
    log_in(page, carol)
    page.goto("/families/")  # her home is the follow-up worklist
    open_family(page, family)

    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.RANDOMISED)
    expect(status_badge(page)).to_have_text(nb(FamilyStatus.RANDOMISED.label))
    expect(page.locator("[data-arm]")).to_have_count(0)
    expect(page.locator("[data-allocation-section]")).to_have_count(0)
    assert not arm_traces(page.content()), "no arm label nor code anywhere in the page, its source included"


def test_it_reveals_the_arm_to_an_assessor_after_the_principal_investigator_confirms(
    open_page, log_in, paula, carol, randomised, language
):
    family = randomised.family
    reason = "Alvorlig hendelse meldt av kommunen: vurderingen må ta hensyn til armen"
    page = open_page(locale=BROWSERS[language])
    log_in(page, paula)
    page.get_by_role("link", name=say(language, "Families"), exact=True).click()
    open_family(page, family, language)
    expect(page.locator("[data-arm]")).to_have_text(arm_label(randomised.arm, language))
    page.get_by_role("link", name=say(language, "Emergency unblinding"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(say(language, "Emergency unblinding"))
    page.get_by_label(field(say(language, "Reveal the arm to"))).select_option(label=carol.get_full_name())
    page.get_by_label(field(say(language, "Reason for breaking the blind"))).fill(reason)
    page.get_by_role("button", name=say(language, "Reveal the arm")).click()

    # The confirmation names the family, the assessor and what will happen; nothing is written yet, and Back keeps
    # what was typed.
    expect(confirmation(page)).to_contain_text(family.study_id)
    expect(confirmation(page)).to_contain_text(carol.get_full_name())
    expect(confirmation(page)).to_contain_text(reason)
    expect(confirmation(page)).to_contain_text(say(language, "This cannot be undone: what was seen cannot be unseen."))
    assert not Unblinding.objects.exists()
    page.get_by_role("button", name=say(language, "Back to the form")).click()
    expect(page.get_by_label(field(say(language, "Reason for breaking the blind")))).to_have_value(reason)
    page.get_by_role("button", name=say(language, "Reveal the arm")).click()
    page.get_by_role("button", name=say(language, "Confirm: reveal the arm")).click()

    expect_on_family_page(page, family.study_id, language)
    expect(page.get_by_role("status")).to_contain_text(
        say(language, "The arm of %(study_id)s is revealed to %(user)s. The data managers have been told.")
        % {"study_id": family.study_id, "user": carol.get_full_name()}
    )
    unblinding = Unblinding.objects.get(family=family)
    assert (unblinding.user, unblinding.unblinded_by, unblinding.reason) == (carol, paula, reason)

    assessor = open_page(locale=BROWSERS[language])
    log_in(assessor, carol)
    assessor.goto("/families/")  # her home is the follow-up worklist
    open_family(assessor, family, language)
    section = assessor.locator("[data-allocation-section]")
    expect(section.locator("[data-arm]")).to_have_text(arm_label(randomised.arm, language))
    expect(section).not_to_contain_text(say(language, "List position"))


def test_it_generates_a_sealed_list_after_showing_the_designs_predictability_and_verifies_it(
    open_page, log_in, dina, oei, lar, language
):
    page = open_page(locale=BROWSERS[language])
    log_in(page, dina)
    expect(page).to_have_url(re.compile(r"/randomisation/$"))
    page.get_by_role("link", name=say(language, "Generate a list"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Generate an allocation list"))
    page.get_by_label(field(say(language, "Site (stratum)"))).select_option(label=str(oei))
    page.get_by_role("button", name=say(language, "Generate and seal")).click()

    # Blocks of 2, 4 or 6 (the default design): Blackwell and Hodges' guesser is right 70.28 % of the time.
    share = float(sequence.predictability(sequence.design([2, 4, 6], (1, 1))))
    assert round(share * 100, 1) == 70.3
    # "70,3 %" in Norwegian, "70.3%" in English, once the catalogue has the Norwegian form.
    expect(confirmation(page)).to_contain_text(percentage(language, share))
    assert not AllocationList.objects.exists(), "nothing is drawn before the data manager confirms"
    page.get_by_role("button", name=say(language, "Confirm: generate and seal")).click()

    expect(page).to_have_url(re.compile(r"/randomisation/OEI/$"))
    expect(page.get_by_role("status")).to_contain_text(
        say(
            language,
            "The allocation list of %(site)s is generated and sealed. Print its commitment for the trial master file.",
        )
        % {"site": oei.code}
    )
    allocation_list = AllocationList.objects.get(site=oei)
    commitment = page.locator("[data-commitment]")
    expect(commitment).to_have_text(SHA256_HEX)
    expect(commitment).to_have_text(allocation_list.commitment)
    expect(page.locator("[data-predictability]")).to_have_text(percentage(language, share))
    expect(page.get_by_role("table")).to_have_count(0)  # a sealed list shows no entries

    page.get_by_role("button", name=say(language, "Verify now")).click()

    expect(page).to_have_url(re.compile(r"/randomisation/OEI/$"))
    expect(page.get_by_role("status")).to_contain_text(
        say(language, "The list of %(site)s passed verification.") % {"site": oei.code}
    )
    expect(page.locator("[data-verification]")).to_have_count(1)
    expect(page.locator("[data-verification] .badge")).to_have_text(say(language, "Passed"))
    assert allocation_list.verifications.get().passed


def test_it_asks_why_when_a_list_has_a_single_block_size(open_page, log_in, dina, oei, language):
    reason = "Etikkomiteen ba om blokker på 4, som i piloten"
    page = open_page(locale=BROWSERS[language])
    log_in(page, dina)
    page.goto("/randomisation/new/")
    page.get_by_label(field(say(language, "Site (stratum)"))).select_option(label=str(oei))
    page.get_by_label(field(say(language, "Block sizes"))).fill("4")
    page.get_by_role("button", name=say(language, "Generate and seal")).click()

    # Fixed blocks of 4: 17/24.
    expect(confirmation(page)).to_contain_text(percentage(language, 17 / 24))
    why = page.get_by_label(field(say(language, "Why a single block size?")))
    expect(why).to_be_visible()
    page.get_by_role("button", name=say(language, "Confirm: generate and seal")).click()
    expect(confirmation(page)).to_contain_text(
        say(
            language,
            "With a single block size the last entry of every block can be foreseen: give the reason for choosing it.",
        )
    )
    assert not AllocationList.objects.exists()
    page.get_by_label(field(say(language, "Why a single block size?"))).fill(reason)
    page.get_by_role("button", name=say(language, "Confirm: generate and seal")).click()

    expect(page).to_have_url(re.compile(r"/randomisation/OEI/$"))
    expect(page.locator("[data-segment] [data-design-reason]")).to_contain_text(reason)
    page.get_by_role("link", name=say(language, "Printable commitment")).click()
    expect(page.locator("[data-design-reason]")).to_contain_text(reason)
    expect(page.locator("[data-how-to-check]")).to_contain_text("sha256sum allocation-list-OEI.txt")


def test_it_warns_of_a_list_running_low_and_extends_it_with_a_new_commitment(open_page, log_in, dina, alice, oei):
    oei.expected_recruitment = 3
    oei.save()
    allocation_list = lists.allocation_list_generate(
        site=oei, generated_by=dina, block_sizes=[2], design_reason="Pairs for a small site"
    )
    for _ in range(allocation_list.length - 1):
        family = ready_to_randomise(oei, by=alice)
        services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
    first_commitment = allocation_list.commitment

    page = open_page(locale=LOCALE)
    log_in(page, dina)
    alert = page.locator(f"[data-list-alert={oei.code}]")
    expect(alert).to_contain_text(oei.code)
    page.get_by_role("link", name=f"{oei.name} ({oei.code})").click()
    page.get_by_role("link", name=nb("Extend the list"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        nb("Extend the allocation list of %(site)s") % {"site": oei.code}
    )
    page.get_by_label(field(nb("Entries to add (at least)"))).fill("6")
    page.get_by_role("button", name=nb("Extend and seal")).click()
    expect(page.locator(".invalid-feedback, [data-error-summary]").first).to_be_visible()  # no reason given
    page.get_by_label(field(nb("Reason"))).fill("Kommunen har fått flere henvisninger enn ventet")
    page.get_by_role("button", name=nb("Extend and seal")).click()
    expect(confirmation(page)).to_contain_text(percentage(LANGUAGE, 253 / 360))  # the default design's
    page.get_by_role("button", name=nb("Confirm: extend and seal")).click()

    expect(page).to_have_url(re.compile(rf"/randomisation/{oei.code}/$"))
    length_before = allocation_list.length
    allocation_list.refresh_from_db()
    assert allocation_list.length >= length_before + 6
    expect(page.locator("[data-commitment]")).to_have_text(allocation_list.commitment)
    assert allocation_list.commitment != first_commitment
    expect(page.locator("[data-segment]")).to_have_count(2)
    expect(page.locator("[data-verification]")).to_have_count(1)  # verified before it was extended
    expect(page.locator(f"[data-list-alert={oei.code}]")).to_have_count(0)


def test_a_list_that_fails_verification_stops_randomisation_until_a_data_manager_and_the_pi_review_it(
    open_page, log_in, dina, paula, alice, oei, consented, language
):
    allocation_list = AllocationList.objects.get(site=oei)
    entry = AllocationEntry.objects.get(allocation_list=allocation_list, position=7)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(pk=entry.pk).update(
            sealed_arm=sequence.CONTROL if entry.sealed_arm == sequence.INTERVENTION else sequence.INTERVENTION
        )
    manager = open_page(locale=BROWSERS[language])
    log_in(manager, dina)
    manager.goto(f"/randomisation/{oei.code}/")
    manager.get_by_role("button", name=say(language, "Verify now")).click()

    expect(manager.get_by_role("status")).to_contain_text(
        say(
            language,
            "The list of %(site)s FAILED verification and is stopped: no family can be randomised there until "
            "a data manager and the principal investigator have recorded what was found.",
        )
        % {"site": oei.code}
    )
    expect(manager.locator("[data-list-suspended]")).to_contain_text(
        say(language, "The arm stored at position %(position)s is not the one the seed gives.") % {"position": 7}
    )

    researcher = open_page(locale=BROWSERS[language])
    log_in(researcher, alice)
    researcher.goto(f"{family_url(consented)}randomise/")
    confirm = say(
        language, "I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s)."
    )
    researcher.get_by_label(
        field(confirm % {"study_id": consented.study_id, "site": oei.name, "code": oei.code})
    ).check()
    researcher.get_by_role("button", name=say(language, "Randomise now")).click()
    expect(researcher.get_by_role("alert")).to_contain_text(
        say(
            language,
            "The allocation list of %(site)s failed verification and is stopped, so %(study_id)s cannot be "
            "randomised now. The data managers have been told; randomisation resumes once a data manager and "
            "the principal investigator have recorded what was found.",
        )
        % {"site": oei.code, "study_id": consented.study_id}
    )
    assert not Allocation.objects.exists()

    manager.get_by_role("link", name=say(language, "Record what was found"), exact=True).click()
    manager.get_by_label(field(say(language, "What was found"))).fill("Et gjenopprettingsskript endret posisjon 7")
    manager.get_by_label(field(say(language, "Decision"))).fill("Fortsett: posisjon 7 er ikke brukt")
    manager.get_by_role("button", name=say(language, "Record")).click()
    expect(manager.get_by_text(say(language, "Waiting for the agreement of the other role."))).to_be_visible()

    investigator = open_page(locale=BROWSERS[language])
    log_in(investigator, paula)
    investigator.goto("/randomisation/")
    expect(investigator.locator("[data-list-suspended]")).to_have_text(say(language, "Failed verification"))
    investigator.goto(f"/randomisation/{oei.code}/")
    expect(investigator.locator("[data-review]")).to_contain_text("Et gjenopprettingsskript endret posisjon 7")
    investigator.get_by_role("button", name=say(language, "Agree and let the list allocate again")).click()
    expect(investigator.get_by_role("status")).to_contain_text(
        say(language, "The allocation list of %(site)s allocates again.") % {"site": oei.code}
    )
    expect(investigator.locator("[data-list-suspended]")).to_have_count(0)

    researcher.goto(f"{family_url(consented)}randomise/")
    researcher.get_by_label(
        field(confirm % {"study_id": consented.study_id, "site": oei.name, "code": oei.code})
    ).check()
    researcher.get_by_role("button", name=say(language, "Randomise now")).click()
    expect(researcher.locator("[data-randomisation-id]")).to_have_text("OEI-R001")


def test_it_unseals_a_list_only_when_a_data_manager_and_the_investigator_both_agree(
    open_page, log_in, dina, paula, randomised
):
    site = randomised.family.site
    manager = open_page(locale=LOCALE)
    log_in(manager, dina)
    manager.goto(f"/randomisation/{site.code}/")
    manager.get_by_role("link", name=nb("Ask to unseal"), exact=True).click()
    manager.get_by_label(field(nb("Why unseal the list now?"))).fill("Rekrutteringen er avsluttet")
    manager.get_by_label(nb("I understand that no family can be randomised from the list once it is unsealed.")).check()
    manager.get_by_role("button", name=nb("Ask to unseal")).click()

    expect(manager).to_have_url(re.compile(rf"/randomisation/{site.code}/$"))
    expect(manager.get_by_text(nb("Waiting for the agreement of the other role."))).to_be_visible()
    expect(manager.get_by_role("button", name=nb("Agree and unseal"))).to_have_count(0)
    expect(manager.get_by_role("table")).to_have_count(0)

    investigator = open_page(locale=LOCALE)
    log_in(investigator, paula)
    investigator.goto(f"/randomisation/{site.code}/")
    investigator.get_by_role("button", name=nb("Agree and unseal")).click()

    table = investigator.get_by_role("table")
    expect(table).to_be_visible()
    expect(table).to_contain_text(randomised.family.study_id)
    expect(table).to_contain_text(arm_label(randomised.arm))
    manager.reload()
    expect(manager.get_by_role("table")).to_be_visible()
    assert not AllocationList.objects.get(site=site).is_sealed


def test_it_marks_a_mistaken_randomisation_after_confirming_and_keeps_the_family_in_its_arm(
    open_page, log_in, alice, randomised, language
):
    family = randomised.family
    reason = "Familien hadde trukket samtykket per telefon dagen før"
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)
    open_family(page, family, language)
    page.get_by_role("link", name=say(language, "Mark as randomised in error"), exact=True).click()
    page.get_by_label(field(say(language, "Why was this randomisation a mistake?"))).fill(reason)
    page.get_by_role("button", name=say(language, "Mark as randomised in error")).click()

    expect(confirmation(page)).to_contain_text(family.study_id)
    expect(confirmation(page)).to_contain_text(reason)
    expect(confirmation(page)).to_contain_text(
        say(
            language,
            "Nothing is undone: the family stays in its arm (%(arm)s) and is analysed there (intention to treat).",
        )
        % {"arm": arm_label(randomised.arm, language)}
    )
    assert not AllocationAnnotation.objects.exists()
    page.get_by_role("button", name=say(language, "Confirm: mark as randomised in error")).click()

    expect_on_family_page(page, family.study_id, language)
    expect(page.locator("[data-annotation]")).to_contain_text(reason)
    expect(page.locator("[data-arm]")).to_have_text(arm_label(randomised.arm, language))
    expect(page.get_by_role("link", name=say(language, "Mark as randomised in error"), exact=True)).to_have_count(0)
    assert Allocation.objects.get(family=family).arm == randomised.arm


def test_the_investigator_follows_recruitment_against_the_targets(
    open_page, log_in, paula, alice, oei, lar, randomised, language
):
    family_in_state("consented", site=oei, by=alice)
    page = open_page(locale=BROWSERS[language])
    log_in(page, paula)
    page.get_by_role("navigation", name=say(language, "Main menu")).get_by_role(
        "link", name=say(language, "Recruitment")
    ).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Recruitment"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    oei_row = page.locator("[data-recruitment=OEI]")
    expect(oei_row).to_have_attribute("data-randomised", "1")
    expect(oei_row).to_have_attribute("data-waiting", "1")
    expect(oei_row).to_contain_text(percentage(language, 1 / oei.expected_recruitment))
    expect(page.locator("[data-recruitment=total]")).to_contain_text(say(language, "The whole trial"))
    expect(page.locator("[data-recruitment=LAR]")).to_have_attribute("data-randomised", "0")
