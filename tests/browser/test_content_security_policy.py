"""Pages load in a real browser with no Content-Security-Policy violation: no inline script or style that the policy
(trial/settings.py, CONTENT_SECURITY_POLICY) blocks, so nothing on the page silently stops working or looking right.
Chromium reports every blocked script, style or image on the console; the test listens for those reports and for
the page's securitypolicyviolation events."""

import pytest
from django.urls import reverse
from playwright.sync_api import Page

from tests.test_access_matrix import frank_as_partner
from trial.models import TrialSettings
from visits.tests.factories import assigned_family, log_contact

pytestmark = pytest.mark.browser


def watch_for_violations(page: Page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and violations.append(f"{page.url}: {message.text}"),
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return violations


def visit(page: Page, violations: list[str], url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("load")
    # Open the menus, whose scripts (Bootstrap's dropdown and collapse) set styles as they run.
    toggler = page.locator(".navbar-toggler:visible, .dropdown-toggle:visible").first
    if toggler.count():
        toggler.click()


def log_in(page: Page, username: str) -> None:
    from trial.tests.factories import PASSWORD

    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize("locale", ["nb-NO", "en-GB"])
def test_the_login_page_loads_without_a_policy_violation(open_page, db, locale):
    page = open_page(locale=locale)
    violations = watch_for_violations(page)

    visit(page, violations, "/accounts/login/")
    page.locator("#id_username").fill("nobody")
    page.locator("#id_password").fill("wrong password")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state("load")

    assert violations == []


def test_the_data_managers_pages_and_the_admin_load_without_a_policy_violation(open_page, dina, trial_settings):
    page = open_page()
    violations = watch_for_violations(page)
    log_in(page, dina.username)
    settings_pk = TrialSettings.current().pk

    for url in [
        reverse("randomization:lists"),
        reverse("trial_settings"),
        "/admin/",
        reverse("admin:trial_trialsettings_change", args=[settings_pk]),
        reverse("admin:trial_trialsettings_history", args=[settings_pk]),
        reverse("password_change"),
    ]:
        visit(page, violations, url)

    assert violations == []


def test_the_researchers_list_and_caseload_load_without_a_policy_violation(open_page, alice):
    page = open_page()
    violations = watch_for_violations(page)
    log_in(page, alice.username)

    for url in [reverse("families:list"), reverse("families:register"), reverse("visits:caseload")]:
        visit(page, violations, url)

    assert violations == []


def test_the_family_pages_load_without_a_policy_violation(open_page, request, oei, alice, frank):
    family = assigned_family(oei, researcher=alice, to=frank_as_partner(request))
    log_contact(family, by=frank)
    page = open_page()
    violations = watch_for_violations(page)
    log_in(page, alice.username)

    for url in [reverse("families:detail", args=[family.study_id]), reverse("visits:family", args=[family.study_id])]:
        visit(page, violations, url)

    assert violations == []


def test_the_api_tokens_page_and_the_api_documentation_load_without_a_policy_violation(open_page, alice):
    page = open_page()
    violations = watch_for_violations(page)
    log_in(page, alice.username)

    visit(page, violations, reverse("tokens:list"))
    page.locator("#id_name").fill("analysis script")
    page.locator("[data-token-form] button[type=submit]").click()
    page.wait_for_load_state("load")
    # Swagger UI draws the operations from the schema with its own scripts (files, no inline script or style).
    visit(page, violations, reverse("api:docs"))
    page.locator(".swagger-ui .opblock").first.wait_for()
    page.locator(".swagger-ui .opblock-summary").first.click()
    page.locator(".swagger-ui .authorize").click()
    page.wait_for_timeout(500)

    assert violations == []
