"""Randomisation journeys, clicked through in a real browser: a researcher randomises a consented family,
a blinded assessor opens it and sees no arm, the principal investigator breaks the blind for her, and a
data manager generates and verifies a site's allocation list.

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
from randomization.models import Allocation, AllocationList, Arm, Unblinding
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
    with translation.override(LANGUAGE):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def arm_label(arm: str) -> str:
    return nb(Arm(arm).label)


def family_url(family: Family) -> str:
    return f"/families/{family.study_id}/"


def expect_on_family_page(page: Page, study_id: str) -> None:
    expect(page).to_have_url(re.compile(rf"/families/{re.escape(study_id)}/$"))
    expect(page.locator("h1.study-id")).to_have_text(study_id)
    expect(page.locator("html")).to_have_attribute("lang", LANGUAGE)


def open_family(page: Page, family: Family) -> None:
    page.get_by_role("link", name=family.study_id, exact=True).click()
    expect_on_family_page(page, family.study_id)


@pytest.fixture
def consented(oei, alice, dina) -> Family:
    """A consented family at Øvre Eiker, whose site has its sealed allocation list."""
    lists.allocation_list_generate(site=oei, generated_by=dina)
    return family_in_state("consented", site=oei, by=alice)


@pytest.fixture
def randomised(consented, alice) -> Allocation:
    return services.family_randomise(family=consented, confirmed_site=consented.site, randomised_by=alice).allocation


def test_it_randomises_a_consented_family_once_after_the_researcher_confirms_family_and_site(
    open_page, log_in, alice, oei, consented, results_dir
):
    page = open_page(locale=LOCALE)
    log_in(page, alice)
    open_family(page, consented)
    page.get_by_role("link", name=nb("Randomise"), exact=True).click()

    expect(page).to_have_url(re.compile(rf"{re.escape(family_url(consented))}randomise/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(consented.study_id)
    expect(page.locator("[data-confirm-study-id]")).to_have_text(consented.study_id)
    expect(page.locator("[data-confirm-site]")).to_have_text(f"{oei.name} ({oei.code})")
    randomise_now = page.get_by_role("button", name=nb("Randomise now"))
    randomise_now.click()

    expect(page.get_by_role("alert")).to_contain_text(nb("Tick the box to confirm the family and its site."))
    assert not Allocation.objects.exists(), "nothing is drawn before the researcher confirms"
    confirm = nb("I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s).") % {
        "study_id": consented.study_id,
        "site": oei.name,
        "code": oei.code,
    }
    page.get_by_label(field(confirm)).check()
    submitted_form = page.locator("main form").evaluate("(form) => Object.fromEntries(new FormData(form))")
    page.get_by_role("button", name=nb("Randomise now")).click()

    expect_on_family_page(page, consented.study_id)
    allocation = Allocation.objects.get(family=consented)
    expect(page.get_by_role("status")).to_contain_text(
        nb("%(study_id)s is randomised to: %(arm)s.")
        % {"study_id": consented.study_id, "arm": arm_label(allocation.arm)}
    )
    section = page.get_by_role("region", name=nb("Randomisation"), exact=True)
    expect(section.locator("[data-arm]")).to_have_text(arm_label(allocation.arm))
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.RANDOMISED)
    expect(status_badge(page)).to_have_text(nb(FamilyStatus.RANDOMISED.label))
    page.screenshot(path=results_dir / "journey-randomise.png", full_page=True)

    # Back to the confirmation page, as the browser kept it, and reloaded: the family is randomised, so
    # the page leads to the family, and the form sent again (a second tab, a flaky network's retry)
    # draws nothing more.
    page.go_back()
    expect(page).to_have_url(re.compile(rf"{re.escape(family_url(consented))}randomise/$"))
    page.reload()
    expect_on_family_page(page, consented.study_id)
    expect(page.locator("[data-arm]")).to_have_text(arm_label(allocation.arm))
    landed = page.evaluate(
        """async ([url, fields]) => {
            const body = new FormData();
            Object.entries(fields).forEach(([name, value]) => body.append(name, value));
            const answer = await fetch(url, {method: "POST", body});
            return [answer.status, new URL(answer.url).pathname];
        }""",
        [f"{family_url(consented)}randomise/", submitted_form],
    )
    assert landed == [200, family_url(consented)], "the form sent again leads to the family, not a second draw"
    assert Allocation.objects.filter(family=consented).count() == 1
    assert Allocation.objects.count() == 1
    assert AllocationList.objects.get(site=oei).used == 1


def test_it_shows_a_blinded_assessor_that_the_family_is_randomised_but_not_its_arm(
    open_page, log_in, carol, randomised
):
    family = randomised.family
    page = open_page(locale=LOCALE)
    log_in(page, carol)
    open_family(page, family)

    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.RANDOMISED)
    expect(status_badge(page)).to_have_text(nb(FamilyStatus.RANDOMISED.label))
    expect(page.locator("[data-arm]")).to_have_count(0)
    expect(page.locator("[data-allocation-section]")).to_have_count(0)
    assert not arm_traces(page.content()), "no arm label nor code anywhere in the page, its source included"


def test_it_reveals_the_arm_to_an_assessor_when_the_principal_investigator_breaks_the_blind(
    open_page, log_in, paula, carol, randomised
):
    family = randomised.family
    reason = "Alvorlig hendelse meldt av kommunen: vurderingen må ta hensyn til armen"
    page = open_page(locale=LOCALE)
    log_in(page, paula)
    open_family(page, family)
    expect(page.locator("[data-arm]")).to_have_text(arm_label(randomised.arm))
    page.get_by_role("link", name=nb("Emergency unblinding"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(nb("Emergency unblinding"))
    page.get_by_label(field(nb("Reveal the arm to"))).select_option(label=carol.get_full_name())
    page.get_by_label(field(nb("Reason for breaking the blind"))).fill(reason)
    page.get_by_role("button", name=nb("Reveal the arm")).click()

    expect_on_family_page(page, family.study_id)
    expect(page.get_by_role("status")).to_contain_text(
        nb("The arm of %(study_id)s is revealed to %(user)s. The data managers have been told.")
        % {"study_id": family.study_id, "user": carol.get_full_name()}
    )
    unblinding = Unblinding.objects.get(family=family)
    assert (unblinding.user, unblinding.unblinded_by, unblinding.reason) == (carol, paula, reason)

    assessor = open_page(locale=LOCALE)
    log_in(assessor, carol)
    open_family(assessor, family)
    expect(assessor.locator("[data-arm]")).to_have_text(arm_label(randomised.arm))


def test_it_generates_a_sealed_list_in_the_browser_and_verifies_it(open_page, log_in, dina, oei, lar):
    page = open_page(locale=LOCALE)
    log_in(page, dina)
    expect(page).to_have_url(re.compile(r"/randomisation/$"))
    page.get_by_role("link", name=nb("Generate a list"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Generate an allocation list"))
    page.get_by_label(field(nb("Site (stratum)"))).select_option(label=str(oei))
    page.get_by_role("button", name=nb("Generate and seal")).click()

    expect(page).to_have_url(re.compile(r"/randomisation/OEI/$"))
    expect(page.get_by_role("status")).to_contain_text(
        nb("The allocation list of %(site)s is generated and sealed. Print its commitment for the trial master file.")
        % {"site": oei.code}
    )
    allocation_list = AllocationList.objects.get(site=oei)
    commitment = page.locator("[data-commitment]")
    expect(commitment).to_have_text(SHA256_HEX)
    expect(commitment).to_have_text(allocation_list.commitment)
    # Blocks of 2, 4 or 6 (the default design): Blackwell and Hodges' guesser is right 70.28 % of the time.
    share = sequence.predictability(sequence.design([2, 4, 6], (1, 1)))
    assert round(float(share) * 100, 1) == 70.3
    with translation.override(LANGUAGE):
        expect(page.locator("[data-predictability]")).to_have_text(f"{formats.number_format(70.3, 1)} %")
    if LANGUAGE == "nb":
        expect(page.locator("[data-predictability]")).to_have_text("70,3 %")
    expect(page.get_by_role("table")).to_have_count(0)  # a sealed list shows no entries

    page.get_by_role("button", name=nb("Verify now")).click()

    expect(page).to_have_url(re.compile(r"/randomisation/OEI/$"))
    expect(page.get_by_role("status")).to_contain_text(
        nb("The list of %(site)s passed verification.") % {"site": oei.code}
    )
    expect(page.locator("[data-verification]")).to_have_count(1)
    expect(page.locator("[data-verification] .badge")).to_have_text(nb("Passed"))
    assert allocation_list.verifications.get().passed


def test_it_warns_of_a_list_running_low_and_extends_it_with_a_new_commitment(open_page, log_in, dina, alice, oei):
    oei.expected_recruitment = 3
    oei.save()
    allocation_list = lists.allocation_list_generate(
        site=oei, generated_by=dina, block_sizes=[2], design_reason="Pairs for a small site"
    )
    for _ in range(allocation_list.length - 1):
        family = family_in_state("consented", site=oei, by=alice)
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

    expect(page).to_have_url(re.compile(rf"/randomisation/{oei.code}/$"))
    length_before = allocation_list.length
    allocation_list.refresh_from_db()
    assert allocation_list.length >= length_before + 6
    expect(page.locator("[data-commitment]")).to_have_text(allocation_list.commitment)
    assert allocation_list.commitment != first_commitment
    expect(page.locator("[data-segment]")).to_have_count(2)
    expect(page.locator(f"[data-list-alert={oei.code}]")).to_have_count(0)


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


def test_it_marks_a_mistaken_randomisation_and_keeps_the_family_in_its_arm(open_page, log_in, alice, randomised):
    family = randomised.family
    reason = "Familien hadde trukket samtykket per telefon dagen før"
    page = open_page(locale=LOCALE)
    log_in(page, alice)
    open_family(page, family)
    page.get_by_role("link", name=nb("Mark as randomised in error"), exact=True).click()
    page.get_by_label(field(nb("Why was this randomisation a mistake?"))).fill(reason)
    page.get_by_role("button", name=nb("Mark as randomised in error")).click()

    expect_on_family_page(page, family.study_id)
    expect(page.locator("[data-annotation]")).to_contain_text(reason)
    expect(page.locator("[data-arm]")).to_have_text(arm_label(randomised.arm))
    expect(page.get_by_role("link", name=nb("Mark as randomised in error"), exact=True)).to_have_count(0)
    assert Allocation.objects.get(family=family).arm == randomised.arm
