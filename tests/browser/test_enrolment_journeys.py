"""A researcher's enrolment journeys, clicked through in a real (Norwegian) browser.

Expected texts are read from the Norwegian catalogue with gettext, never typed here, so the tests
follow the translations as they are written; where a string has no Norwegian text yet, gettext gives
the English one, and so does the page.
"""

import re
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext
from playwright.sync_api import Page, expect

from families import services
from families.models import (
    Consent,
    ConsentDecision,
    Criterion,
    Family,
    FamilyStatus,
    ReferralSource,
    StruggleArea,
    WithdrawalReason,
)
from families.tests.factories import days_ago, family_in_state, register_family
from randomization import lists
from randomization import services as randomisation
from randomization.models import Arm
from randomization.tests.factories import ready_to_randomise
from tests.browser.conftest import NORWEGIAN_BROWSER
from trial.models import Site
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits.tests.factories import partner, randomised_family

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
NORWEGIAN_DATETIME = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}")


def nb(text) -> str:
    """What a Norwegian user reads for `text`: a message id, or a lazy label such as a choice's."""
    with translation.override("nb"):
        return gettext(text) if isinstance(text, str) else str(text)


def norwegian(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def field(label: str) -> re.Pattern:
    """A form field's accessible name: its label, followed by an asterisk when the field is required."""
    return re.compile(rf"^\s*{re.escape(label)}\s*\*?\s*$")


def next_study_id(site: Site) -> str:
    site.refresh_from_db()
    return Family.format_study_id(site.code, site.last_family_number + 1)


def expect_norwegian_page(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "nb")


def expect_on_family_page(page: Page, study_id: str) -> None:
    expect(page).to_have_url(re.compile(rf"/families/{re.escape(study_id)}/$"))
    expect(page.locator("h1.study-id")).to_have_text(study_id)
    expect_norwegian_page(page)


def status_badge(page: Page):
    return page.locator("main h1 ~ [data-status]")


def menu(page: Page):
    return page.get_by_role("navigation", name=nb("Main menu"))


def answer(page: Page, question: str, choice: str) -> None:
    page.get_by_role("group", name=field(nb(question))).get_by_label(nb(choice), exact=True).check()


def fill_registration(page: Page, *, site: Site, referred_on: date, child_born: date) -> None:
    page.get_by_label(field(nb("Site"))).select_option(label=str(site))
    page.get_by_label(field(nb("Referral date"))).fill(referred_on.isoformat())
    page.get_by_label(field(nb("Referred by"))).select_option(label=nb(ReferralSource.CHILD_WELFARE_CASEWORKER.label))
    page.get_by_label(field(nb("Parent's birth year"))).first.fill("1990")
    page.get_by_label(field(nb("Child's birth date"))).first.fill(child_born.isoformat())
    page.get_by_label(field(nb("Parent's full name"))).fill("Kari Nordmann")
    page.get_by_label(field(nb("Phone"))).fill("912 34 567")


def registration_button(page: Page):
    return page.get_by_role("button", name=nb("Register"), exact=True)


def test_it_takes_a_family_from_referral_to_consent_for_a_researcher_with_a_norwegian_browser(
    page, log_in, alice, oei, results_dir
):
    study_id = next_study_id(oei)
    referred_on, screened_on, consented_on = days_ago(30), days_ago(20), days_ago(10)
    child_born = days_ago(365 * 7 + 30)

    log_in(page, alice)
    expect_norwegian_page(page)
    menu(page).get_by_role("link", name=nb("Register a family"), exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Register a referred family"))
    expect_norwegian_page(page)
    fill_registration(page, site=oei, referred_on=referred_on, child_born=child_born)
    registration_button(page).click()

    expect_on_family_page(page, study_id)
    expect(page.get_by_role("status")).to_contain_text(nb("Family %(study_id)s registered.") % {"study_id": study_id})
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.REFERRED)
    referral = page.get_by_role("region", name=nb("Referral and household"), exact=True)
    expect(referral).to_contain_text(norwegian(referred_on))
    expect(referral).to_contain_text(norwegian(child_born))
    expect(page.get_by_role("region", name=nb("Direct identifiers"), exact=True)).to_contain_text("Kari Nordmann")

    page.get_by_role("link", name=nb("Screen"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(nb("Screening"))
    expect_norwegian_page(page)
    page.get_by_label(field(nb("Screening date"))).fill(screened_on.isoformat())
    answer(page, "Is the family already involved with child welfare services?", "Yes")
    answer(page, "Do the children live under potentially harmful circumstances?", "Yes")
    page.get_by_label(nb(StruggleArea.FINANCES.label), exact=True).check()
    page.get_by_label(nb(StruggleArea.MENTAL_HEALTH.label), exact=True).check()
    page.get_by_role("button", name=nb("Save screening")).click()

    expect_on_family_page(page, study_id)
    expect(page.get_by_role("status")).to_contain_text(nb("%(study_id)s is eligible.") % {"study_id": study_id})
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.ELIGIBLE)
    screening = page.get_by_role("region", name=nb("Screening"), exact=True)
    expect(screening).to_contain_text(nb("Eligible"))
    expect(screening).to_contain_text(norwegian(screened_on))

    page.get_by_role("link", name=nb("Record consent or decline")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(nb("Consent"))
    expect_norwegian_page(page)
    answer(page, "The family's answer", ConsentDecision.CONSENTED.label)
    page.get_by_label(field(nb("Date"))).fill(consented_on.isoformat())
    page.get_by_label(field(nb("Consent form version"))).fill("v2.1")
    expect(page.get_by_label(field(nb("Consent obtained by")))).to_have_value(str(alice.pk))  # she did
    page.get_by_role("button", name=nb("Save the decision")).click()

    expect_on_family_page(page, study_id)
    expect(page.get_by_role("status")).to_contain_text(nb("Consent of %(study_id)s recorded.") % {"study_id": study_id})
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.CONSENTED)
    expect(status_badge(page)).to_have_text(nb(FamilyStatus.CONSENTED.label))
    consent = page.get_by_role("region", name=nb("Consent"), exact=True)
    expect(consent).to_contain_text(norwegian(consented_on))
    expect(consent).to_contain_text("v2.1")

    timeline = page.locator("[data-timeline]")
    consent_added = nb("%(record)s added") % {"record": capfirst(nb(Consent._meta.verbose_name))}
    expect(timeline.locator(":scope > li").filter(has_text=consent_added)).to_have_count(1)
    status_label = capfirst(nb(Family._meta.get_field("status").verbose_name))
    expect(timeline).to_contain_text(
        f"{status_label}: {nb(FamilyStatus.ELIGIBLE.label)} → {nb(FamilyStatus.CONSENTED.label)}"
    )
    version_label = capfirst(nb(Consent._meta.get_field("form_version").verbose_name))
    expect(timeline).to_contain_text(f"{version_label}: v2.1")
    expect(timeline.locator(":scope > li .small").first).to_have_text(NORWEGIAN_DATETIME)
    assert not ISO_DATE.findall(page.locator("main").inner_text()), "every date on the page reads dd.mm.yyyy"

    navbar_colour = page.locator("nav.navbar").evaluate("(navbar) => getComputedStyle(navbar).backgroundColor")
    assert navbar_colour != "rgba(0, 0, 0, 0)", "Bootstrap's stylesheet is loaded"
    page.screenshot(path=results_dir / "journey-consent.png", full_page=True)


def test_it_lists_why_a_screened_family_is_not_eligible(page, log_in, alice, oei, results_dir):
    family = register_family(site=oei, by=alice)

    log_in(page, alice)
    page.get_by_role("link", name=family.study_id, exact=True).click()
    expect_on_family_page(page, family.study_id)
    page.get_by_role("link", name=nb("Screen"), exact=True).click()
    page.get_by_label(field(nb("Screening date"))).fill(days_ago(5).isoformat())
    answer(page, "Is the family already involved with child welfare services?", "Yes")
    answer(page, "Do the children live under potentially harmful circumstances?", "No")
    page.get_by_label(nb(StruggleArea.HOUSING.label), exact=True).check()
    page.get_by_role("button", name=nb("Save screening")).click()

    expect_on_family_page(page, family.study_id)
    expect(page.get_by_role("status")).to_contain_text(
        nb("%(study_id)s is not eligible.") % {"study_id": family.study_id}
    )
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.INELIGIBLE)
    expect(status_badge(page)).to_have_text(nb(FamilyStatus.INELIGIBLE.label))
    expect(page.locator("[data-failed-criteria] li")).to_have_text(
        [nb(Criterion.HARMFUL_CIRCUMSTANCES.label), nb(Criterion.STRUGGLE_AREAS.label)]
    )
    expect(page.get_by_role("link", name=nb("Record consent or decline"))).to_have_count(0)
    page.screenshot(path=results_dir / "journey-ineligible.png", full_page=True)


def test_it_registers_a_double_clicked_family_once(page, log_in, alice, oei):
    study_id = next_study_id(oei)

    log_in(page, alice)
    menu(page).get_by_role("link", name=nb("Register a family"), exact=True).click()
    fill_registration(page, site=oei, referred_on=days_ago(3), child_born=days_ago(400))
    registration_button(page).dblclick()

    expect_on_family_page(page, study_id)
    assert list(Family.objects.values_list("study_id", flat=True)) == [study_id]


def test_it_registers_a_family_once_when_its_form_arrives_twice_at_the_same_moment(page, log_in, alice, oei):
    # The page's script stops a second click; this sends the same filled-in form twice at once, as a
    # browser without the script (or a flaky network's retry) would, so the server's guard must hold.
    study_id = next_study_id(oei)

    log_in(page, alice)
    menu(page).get_by_role("link", name=nb("Register a family"), exact=True).click()
    fill_registration(page, site=oei, referred_on=days_ago(3), child_born=days_ago(400))
    landed = page.locator("main form").evaluate(
        """async (form) => {
            const send = () => fetch(form.action, {method: "POST", body: new FormData(form)});
            const answers = await Promise.all([send(), send()]);
            return answers.map((answer) => [answer.status, new URL(answer.url).pathname]);
        }"""
    )

    assert landed == [[200, f"/families/{study_id}/"]] * 2
    assert list(Family.objects.values_list("study_id", flat=True)) == [study_id]


def test_it_fits_the_families_on_a_phone_and_opens_the_menu_there(open_page, log_in, alice, oei, results_dir):
    family = family_in_state("consented", site=oei, by=alice)
    family_in_state("ineligible", site=oei, by=alice)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)

    def expect_no_sideways_scrolling() -> None:
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{page.url} is {widths[0]}px wide on a {widths[1]}px phone"

    log_in(page, alice)
    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Families"))
    expect_no_sideways_scrolling()

    register = menu(page).get_by_role("link", name=nb("Register a family"), exact=True)
    expect(register).to_be_hidden()
    page.get_by_role("button", name=nb("Show menu")).click()
    expect(register).to_be_visible()

    page.get_by_role("link", name=family.study_id, exact=True).click()
    expect_on_family_page(page, family.study_id)
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.CONSENTED)
    expect_no_sideways_scrolling()
    page.screenshot(path=results_dir / "phone-family.png", full_page=True)


# Bugs these journeys ran into, fixed since (issue 9).


def test_it_names_the_researcher_who_obtained_consent_as_the_rest_of_the_pages_do(page, log_in, alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)

    log_in(page, alice)
    page.get_by_role("link", name=family.study_id, exact=True).click()
    page.get_by_role("link", name=nb("Record consent or decline")).click()

    obtained_by = page.get_by_label(field(nb("Consent obtained by")))
    expect(obtained_by.locator("option:checked")).to_have_text(alice.get_full_name())


def test_it_corrects_a_mistyped_birth_date_and_sends_the_family_back_to_screening(page, log_in, alice, oei):
    family = family_in_state("ineligible", site=oei, by=alice)
    corrected = date(2020, 4, 17)

    log_in(page, alice)
    page.get_by_role("link", name=family.study_id, exact=True).click()
    expect_on_family_page(page, family.study_id)
    page.get_by_role("link", name=re.compile(rf"^{re.escape(nb('Correct'))}\b")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(nb("Correct the household"))
    page.get_by_label(field(nb("Child's birth date"))).first.fill(norwegian(corrected))
    page.get_by_label(field(nb("Reason for the correction"))).fill("Fødselsdatoen var feilskrevet")
    page.get_by_role("button", name=nb("Save the correction")).click()

    expect_on_family_page(page, family.study_id)
    expect(page.get_by_role("status")).to_contain_text(
        nb("Household of %(study_id)s corrected.") % {"study_id": family.study_id}
    )
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.REFERRED)
    expect(page.locator("main")).to_contain_text(norwegian(corrected))
    expect(page.locator("[data-timeline]")).to_contain_text("Fødselsdatoen var feilskrevet")
    expect(page.get_by_role("link", name=nb("Screen again"), exact=True)).to_be_visible()


# --- Issue 9: every journey in both languages --------------------------------------------------------------

BROWSERS = {"nb": NORWEGIAN_BROWSER, "en": "en-GB"}


def say(language: str, text) -> str:
    """What a user of `language` reads for `text`: a message id, or a lazy label such as a choice's."""
    with translation.override(language):
        return gettext(text) if isinstance(text, str) else str(text)


def typed(language: str, day: date) -> str:
    return day.strftime("%d.%m.%Y") if language == "nb" else day.isoformat()


@pytest.fixture
def dashboard_families(oei, alice):
    """At Øvre Eiker: a family in each state of enrolment, and one randomised to each arm, the intervention
    family waiting for its Family Partner (fenna has slots)."""
    families = {
        state: family_in_state(state, site=oei, by=alice)
        for state in ("referred", "eligible", "ineligible", "consented", "declined", "withdrawn")
    }
    partner(oei, "fenna")
    families["intervention"] = randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
    families["control"] = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    return families


def list_rows(page: Page):
    return page.locator("main table.family-table tbody tr")


def study_ids_shown(page: Page) -> list[str]:
    return list_rows(page).locator("a.study-id").all_inner_texts()


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_shows_a_researcher_the_status_counts_sorting_next_steps_and_arms_on_the_families_page(
    open_page, log_in, alice, oei, dashboard_families, results_dir, language
):
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)
    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Families"))
    counts = page.get_by_role("navigation", name=say(language, "Families by status"))
    total = Family.objects.filter(site=oei).count()
    expect(counts.get_by_role("link").first).to_contain_text(str(total))
    expect(list_rows(page)).to_have_count(total)

    # The arm, for a researcher of the site.
    arms = page.locator("main table.family-table tbody td[data-arm]")
    intervention_row = list_rows(page).filter(
        has=page.get_by_role("link", name=dashboard_families["intervention"].study_id, exact=True)
    )
    expect(intervention_row.locator("td[data-arm]")).to_have_text(say(language, Arm.INTERVENTION.label))
    expect(arms.filter(has_text=say(language, Arm.CONTROL.label))).not_to_have_count(0)

    # A count filters the list.
    eligible = say(language, FamilyStatus.ELIGIBLE.label)
    counts.get_by_role("link", name=re.compile(rf"^{re.escape(eligible)}\b")).click()
    expect(list_rows(page)).to_have_count(1)
    expect(list_rows(page).locator("a.study-id")).to_have_text(dashboard_families["eligible"].study_id)
    expect(counts.locator("[aria-current=true]")).to_contain_text(eligible)
    counts.get_by_role("link").first.click()
    expect(list_rows(page)).to_have_count(total)

    # A heading sorts, and a second click reverses.
    heading = page.get_by_role("columnheader", name=re.compile(re.escape(say(language, "Study ID"))))
    heading.get_by_role("link").click()
    expect(heading).to_have_attribute("aria-sort", "descending")
    shown = study_ids_shown(page)
    assert shown == sorted(shown, reverse=True)
    status_heading = page.get_by_role("columnheader", name=re.compile(re.escape(say(language, "Status"))))
    status_heading.get_by_role("link").click()
    expect(status_heading).to_have_attribute("aria-sort", "ascending")
    expect(list_rows(page).first.locator("[data-status]")).to_have_attribute("data-status", FamilyStatus.REFERRED)
    page.screenshot(path=results_dir / f"dashboard-researcher-{language}.png", full_page=True)

    # The next step: assign the waiting intervention family a Family Partner, screen the referred one.
    waiting = dashboard_families["intervention"].study_id
    expect(
        list_rows(page)
        .filter(has=page.get_by_role("link", name=waiting, exact=True))
        .get_by_role("link", name=re.compile(re.escape(say(language, "Assign a Family Partner"))))
    ).to_be_visible()
    referred = dashboard_families["referred"].study_id
    list_rows(page).filter(has=page.get_by_role("link", name=referred, exact=True)).get_by_role(
        "link", name=re.compile(rf"^{re.escape(say(language, 'Screen'))}\b")
    ).click()
    expect(page).to_have_url(re.compile(rf"/families/{referred}/screen/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(language, "Screening"))


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_shows_an_assessor_the_families_page_without_arms_or_next_steps(
    open_page, log_in, carol, dashboard_families, language
):
    page = open_page(locale=BROWSERS[language])
    log_in(page, carol)
    # An assessor's home is the follow-up worklist; the families are one click away in the menu.
    page.get_by_role("navigation", name=say(language, "Main menu")).get_by_role(
        "link", name=say(language, "Families"), exact=True
    ).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Families"))
    expect(list_rows(page)).to_have_count(Family.objects.filter(site__code="OEI").count())
    expect(page.locator("main [data-arm]")).to_have_count(0)
    expect(page.get_by_role("columnheader", name=say(language, "Arm"))).to_have_count(0)
    expect(page.get_by_label(say(language, "Arm"), exact=True)).to_have_count(0)
    expect(page.locator("main [data-next-step]")).to_have_count(0)
    for arm in Arm:
        expect(page.locator("main")).not_to_contain_text(say(language, arm.label))


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_fits_the_families_page_with_every_status_and_column_on_a_phone(
    open_page, log_in, alice, oei, dashboard_families, results_dir, language
):
    page = open_page(locale=BROWSERS[language], viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, alice)

    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]}px wide on a {widths[1]}px phone"
    table = page.locator("main .table-responsive").evaluate("(table) => [table.scrollWidth, table.clientWidth]")
    assert table[0] <= table[1], f"the table is {table[0]}px wide in a {table[1]}px frame: a column is cut off"
    badges = page.locator("main table [data-status]")
    expect(badges).to_have_count(Family.objects.filter(site=oei).count())
    for number in range(badges.count()):
        badge = badges.nth(number)
        box = badge.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{badge.inner_text()!r} is cut off"
        assert badge.evaluate("(badge) => badge.scrollWidth <= badge.clientWidth"), f"{badge.inner_text()!r} overflows"
    study_id_lines = page.locator("main td .study-id").first.evaluate("(link) => link.getClientRects().length")
    assert study_id_lines == 1, "a study ID is read as one word, never broken across lines"
    # The arm and the next step fold into the first column.
    expect(page.locator("main td:visible [data-arm]").first).to_be_visible()
    expect(page.locator("main td [data-next-step]:visible").first).to_be_visible()
    page.screenshot(path=results_dir / f"dashboard-phone-{language}.png", full_page=True)


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_shows_every_registration_mistake_at_once_links_each_to_its_field_and_registers_once_corrected(
    open_page, log_in, alice, oei, results_dir, language
):
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)
    page.goto("/families/new/")
    tomorrow = timezone.localdate() + timedelta(days=1)
    page.get_by_label(field(say(language, "Referral date"))).fill(typed(language, tomorrow))
    page.get_by_role("button", name=say(language, "Register"), exact=True).click()

    summary = page.get_by_role("alert").filter(has_text=say(language, "Correct the following:"))
    expect(summary).to_be_focused()
    mistakes = {
        "id_referral_date": say(language, "The date cannot be in the future."),
        "id_parents-0-birth_year": say(language, "Add at least one parent."),
        "id_children-0-birth_date": say(language, "Add at least one child."),
        "id_contact_name": say(language, "This field is required."),
    }
    links = summary.get_by_role("link")
    expect(links).to_have_count(len(mistakes))
    page.screenshot(path=results_dir / f"register-mistakes-{language}.png", full_page=True)
    for field_id, message in mistakes.items():
        link = summary.locator(f'a[href="#{field_id}"]')
        expect(link).to_contain_text(message)
        link.click()
        target = page.locator(f'[id="{field_id}"]')
        expect(target).to_be_focused()
        expect(target).to_have_attribute("aria-invalid", "true")
        expect(target).to_have_accessible_description(re.compile(re.escape(message)))

    study_id = next_study_id(oei)
    page.get_by_label(field(say(language, "Referral date"))).fill(typed(language, days_ago(2)))
    page.get_by_label(field(say(language, "Parent's birth year"))).first.fill("1990")
    page.get_by_label(field(say(language, "Child's birth date"))).first.fill(typed(language, days_ago(365 * 4)))
    page.get_by_label(field(say(language, "Parent's full name"))).fill("Kari Nordmann")
    page.get_by_role("button", name=say(language, "Register"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/families/{study_id}/$"))
    expect(page.get_by_role("status")).to_contain_text(
        say(language, "Family %(study_id)s registered.") % {"study_id": study_id}
    )
    assert Family.objects.filter(study_id=study_id).exists()


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_records_that_a_declined_family_consents_later_and_keeps_both_answers(
    open_page, log_in, alice, oei, results_dir, language
):
    family = family_in_state("declined", site=oei, by=alice)
    reason = "Mora ringte tilbake: de vil være med" if language == "nb" else "The mother called back: they want in"
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)
    page.goto(f"/families/{family.study_id}/")

    page.get_by_role("link", name=say(language, "Record a new decision")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(say(language, "Consent"))
    page.get_by_role("group", name=field(say(language, "The family's answer"))).get_by_label(
        say(language, ConsentDecision.CONSENTED.label), exact=True
    ).check()
    page.get_by_label(field(say(language, "Consent form version"))).fill("v3")
    expect(page.get_by_label(field(say(language, "Date")))).to_have_value(typed(language, timezone.localdate()))
    page.get_by_role("button", name=say(language, "Save the decision")).click()
    # Without the reason, the form says what is missing.
    summary = page.get_by_role("alert").filter(has_text=say(language, "Correct the following:"))
    expect(summary).to_contain_text(
        say(language, "The family has answered before: give the reason for the new decision.")
    )
    summary.get_by_role("link").first.click()
    reason_field = page.get_by_label(field(say(language, "Reason for the new decision")))
    expect(reason_field).to_be_focused()
    reason_field.fill(reason)
    page.screenshot(path=results_dir / f"new-decision-{language}.png", full_page=True)
    page.get_by_role("button", name=say(language, "Save the decision")).click()

    expect(page).to_have_url(re.compile(rf"/families/{family.study_id}/$"))
    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.CONSENTED)
    consent = page.get_by_role("region", name=say(language, "Consent"), exact=True)
    decisions = consent.locator("[data-decision]")
    expect(decisions).to_have_count(2)
    expect(decisions.first).to_have_attribute("data-decision", ConsentDecision.CONSENTED)
    expect(decisions.first).to_contain_text(reason)
    expect(decisions.last).to_have_attribute("data-decision", ConsentDecision.DECLINED)
    expect(page.get_by_role("link", name=say(language, "Record a new decision"))).to_have_count(0)


@pytest.mark.parametrize("language", ["nb", "en"])
def test_it_shows_an_assessor_the_coded_withdrawal_reason_of_a_randomised_family_but_not_its_details(
    open_page, log_in, alice, carol, dina, oei, results_dir, language
):
    randolf = UserFactory(username="randolf", roles=[Role.RESEARCHER], sites=[oei])
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = ready_to_randomise(oei, by=alice)
    randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=randolf)
    details = "Ville ikke ha besøk av familiepartneren lenger"
    services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(0),
        reason=WithdrawalReason.FAMILY_REQUEST,
        details=details,
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    page = open_page(locale=BROWSERS[language])
    log_in(page, carol)
    page.goto(f"/families/{family.study_id}/")

    expect(status_badge(page)).to_have_attribute("data-status", FamilyStatus.WITHDRAWN)
    consent = page.get_by_role("region", name=say(language, "Consent"), exact=True)
    expect(consent).to_contain_text(say(language, WithdrawalReason.FAMILY_REQUEST.label))
    expect(page.locator("main")).not_to_contain_text(details)
    expect(page.locator("main")).not_to_contain_text(randolf.get_full_name())
    today = typed(language, timezone.localdate())
    expect(page.locator("[data-timeline]")).to_contain_text(today)
    assert not re.search(rf"{re.escape(today)} \d{{1,2}}:\d{{2}}", page.locator("main").inner_text()), (
        "no time of day on the randomisation's day"
    )
    page.screenshot(path=results_dir / f"assessor-withdrawn-{language}.png", full_page=True)
