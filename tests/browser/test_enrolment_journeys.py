"""A researcher's enrolment journeys, clicked through in a real (Norwegian) browser.

Expected texts are read from the Norwegian catalogue with gettext, never typed here, so the tests
follow the translations as they are written; where a string has no Norwegian text yet, gettext gives
the English one, and so does the page.
"""

import re
from datetime import date

import pytest
from django.utils import translation
from django.utils.text import capfirst
from django.utils.translation import gettext
from playwright.sync_api import Page, expect

from families.models import (
    Consent,
    ConsentDecision,
    Criterion,
    Family,
    FamilyStatus,
    ReferralSource,
    StruggleArea,
)
from families.tests.factories import days_ago, family_in_state, register_family
from trial.models import Site

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


# Bugs these journeys ran into: these tests fail until the application is fixed (see the report).


def test_it_shows_every_column_of_the_family_list_on_a_phone(open_page, log_in, alice, oei):
    family_in_state("eligible", site=oei, by=alice)
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True)

    log_in(page, alice)

    study_id_lines = page.locator("main td .study-id").first.evaluate("(link) => link.getClientRects().length")
    assert study_id_lines == 1, "a study ID is read as one word, never broken across lines"
    table_widths = page.locator("main .table-responsive").evaluate("(table) => [table.scrollWidth, table.clientWidth]")
    assert table_widths[0] <= table_widths[1], (
        f"the table is {table_widths[0]}px wide in a {table_widths[1]}px frame: the status is cut off on a phone"
    )


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
