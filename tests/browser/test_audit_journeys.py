"""The sites' recruitment state and the audit log in a real browser, in both languages: a data manager pauses a
site with a reason; a researcher of that site sees the banner and is refused a registration with the message; the
PI opens the audit log, filters by the site, sees the change with its reason, and downloads the CSV, which the test
reads.

Expected texts come from the catalogue with gettext: where a string has no Norwegian text yet, the page shows the
English one, and so does gettext."""

import csv
import io
import re
from datetime import date

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from families.models import Family, ReferralSource
from families.tests.factories import days_ago
from trial.models import AuditEvent, EventKind, RecruitmentState, Site

pytestmark = pytest.mark.browser

LOCALES = {"nb-NO": "nb", "en-GB": "en"}
REASON = "The municipality is hiring new Family Partners"


def say(language: str, text) -> str:
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def field(label: str) -> re.Pattern:
    """A form field's accessible name: its label, followed by an asterisk when the field is required."""
    return re.compile(rf"^\s*{re.escape(label)}\s*\*?\s*$")


def menu(page: Page, language: str):
    return page.get_by_role("navigation", name=say(language, "Main menu"))


def fill_registration(page: Page, language: str, *, site: Site, referred_on: date, child_born: date) -> None:
    page.get_by_label(field(say(language, "Site"))).select_option(label=str(site))
    page.get_by_label(field(say(language, "Referral date"))).fill(referred_on.isoformat())
    page.get_by_label(field(say(language, "Referred by"))).select_option(
        label=say(language, ReferralSource.CHILD_WELFARE_CASEWORKER.label)
    )
    page.get_by_label(field(say(language, "Parent's birth year"))).first.fill("1990")
    page.get_by_label(field(say(language, "Child's birth date"))).first.fill(child_born.isoformat())
    page.get_by_label(field(say(language, "Parent's full name"))).fill("Kari Nordmann")


@pytest.mark.parametrize("locale", list(LOCALES))
def test_a_paused_site_refuses_registration_and_the_pi_finds_the_pause_in_the_audit_log(
    open_page, log_in, dina, paula, alice, oei, lar, locale
):
    language = LOCALES[locale]

    # A data manager pauses Øvre Eiker, with a reason, from the settings page.
    page = open_page(locale=locale)
    log_in(page, dina)
    menu(page, language).get_by_role("link", name=say(language, "Settings"), exact=True).click()
    page.get_by_role("link", name=say(language, "Recruitment at the sites: open, paused or closed")).click()
    card = page.locator('[data-site-recruitment="OEI"]')
    card.get_by_label(say(language, RecruitmentState.PAUSED.label), exact=True).check()
    card.get_by_label(field(say(language, "Reason"))).fill(REASON)
    card.get_by_role("button", name=say(language, "Change recruitment at %(site)s") % {"site": oei.name}).click()

    expect(page.locator(".alert-success")).to_contain_text(
        say(language, "Recruitment at %(site)s is now %(state)s.")
        % {"site": oei.name, "state": say(language, RecruitmentState.PAUSED.label).lower()}
    )
    expect(page.locator('[data-site-recruitment="OEI"] [data-state]')).to_have_text(
        say(language, RecruitmentState.PAUSED.label)
    )
    expect(page.locator('[data-site-recruitment="OEI"] [data-reason]')).to_have_text(REASON)
    assert Site.objects.get(pk=oei.pk).recruitment_state == RecruitmentState.PAUSED

    # A researcher of that site sees why, and cannot register a family there.
    researcher = open_page(locale=locale)
    log_in(researcher, alice)
    researcher.goto("/families/")
    banner = researcher.locator('[data-recruitment-banner="OEI"]')
    expect(banner).to_contain_text(
        say(language, "Recruitment at %(site)s is paused: no new families can be registered there for now.")
        % {"site": oei.name}
    )
    expect(banner).to_contain_text(REASON)
    menu(researcher, language).get_by_role("link", name=say(language, "Register a family"), exact=True).click()
    expect(researcher.locator('[data-recruitment-banner="OEI"]')).to_contain_text(REASON)
    fill_registration(researcher, language, site=oei, referred_on=days_ago(3), child_born=days_ago(400))
    researcher.get_by_role("button", name=say(language, "Register"), exact=True).click()

    refusal = say(language, "%(site)s is not recruiting (%(state)s): no family can be registered there now.") % {
        "site": oei.name,
        "state": say(language, RecruitmentState.PAUSED.label).lower(),
    }
    expect(researcher.locator("[data-error-summary]")).to_contain_text(refusal)
    assert not Family.objects.exists()

    # The PI finds the pause in the audit log, filtered by the site, and downloads it.
    pi = open_page(locale=locale)
    log_in(pi, paula)
    menu(pi, language).get_by_role("link", name=say(language, "Audit log"), exact=True).click()
    expect(pi.get_by_role("heading", level=1)).to_have_text(say(language, "Audit log"))
    pi.get_by_label(say(language, "Site"), exact=True).select_option(label=str(oei))
    pi.get_by_role("button", name=say(language, "Filter"), exact=True).click()
    expect(pi).to_have_url(re.compile(r"site=OEI"))
    # (The site may have a row of its creation too, when a test before this one made it anew.)
    site_change = pi.locator('[data-audit-row="trial.site"]').filter(has_text=REASON)
    expect(site_change).to_have_count(1)
    expect(site_change.locator("[data-what]")).to_have_text(
        say(language, "%(record)s changed") % {"record": say(language, "site").capitalize()}
    )
    expect(site_change.locator("[data-reason]")).to_have_text(REASON)
    expect(site_change).to_contain_text("dina")
    expect(pi.locator("[data-audit-row]").filter(has_text="LAR")).to_have_count(0)

    with pi.expect_download() as download_info:
        pi.get_by_role("link", name=say(language, "Download as CSV")).click()
    download = download_info.value
    assert download.suggested_filename.startswith("audit-log-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as exported:
        lines = list(csv.reader(io.StringIO(exported.read())))
    assert lines[0][3] == say(language, "Study ID")
    pauses = [line for line in lines[1:] if line[5] == REASON]
    assert len(pauses) == 1
    assert pauses[0][1:5] == [
        "dina",
        say(language, "%(record)s changed") % {"record": say(language, "site").capitalize()},
        "",
        "OEI",
    ]
    assert {line[4] for line in lines[1:]} == {"OEI"}
    export = AuditEvent.objects.get(kind=EventKind.AUDIT_LOG_EXPORTED)
    assert (export.user, export.details) == (paula, {"filters": {"site": "OEI"}})
