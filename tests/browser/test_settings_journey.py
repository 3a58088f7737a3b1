"""The trial settings page in a real browser, in both languages: a data manager changes a setting with a reason
and sees the change in the history; the PI reads the settings and the change, with nothing to edit.

Expected texts come from the catalogue with gettext: where a string has no Norwegian text yet, the page shows the
English one, and so does gettext."""

import re

import pytest
from django.utils import translation
from playwright.sync_api import expect

from trial.models import TrialSettings
from trial.tests.factories import PASSWORD

pytestmark = pytest.mark.browser

LOCALES = {"nb-NO": "nb", "en-GB": "en"}


def in_language(language: str, text) -> str:
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize("locale", list(LOCALES))
def test_a_data_manager_changes_a_setting_with_a_reason_and_the_pi_reads_it(open_page, dina, paula, locale):
    language = LOCALES[locale]
    TrialSettings.current()
    page = open_page(locale=locale)
    log_in(page, dina.username)

    page.get_by_role("link", name=in_language(language, "Settings"), exact=True).click()
    expect(page).to_have_url(re.compile(r"/settings/$"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    capacity = page.get_by_label(in_language(language, TrialSettings._meta.get_field("partner_capacity").verbose_name))
    expect(capacity).to_have_value("5")
    capacity.fill("4")
    page.get_by_label(in_language(language, "Reason for the change")).fill("Protocol amendment 3")
    page.get_by_role("button", name=in_language(language, "Save the settings")).click()

    expect(page.locator(".alert-success")).to_have_text(in_language(language, "The trial settings are saved."))
    change = page.locator("[data-settings-change]").first
    expect(change).to_contain_text("Protocol amendment 3")
    expect(change).to_contain_text("5")
    expect(change).to_contain_text("4")
    expect(change.locator("del")).to_have_text("5")
    expect(change.locator("ins")).to_have_text("4")
    assert TrialSettings.current().partner_capacity == 4

    pi_page = open_page(locale=locale)
    log_in(pi_page, paula.username)
    pi_page.get_by_role("link", name=in_language(language, "Settings"), exact=True).click()
    expect(pi_page.locator("[data-setting=partner_capacity]")).to_have_text("4")
    expect(pi_page.locator("[data-settings-change]").first).to_contain_text("Protocol amendment 3")
    expect(pi_page.locator("main form")).to_have_count(0)
    expect(pi_page.locator("main input, main textarea")).to_have_count(0)
