"""One browser journey per role against the trial running as in production (tests/stack/harness.py: Gunicorn over
HTTPS with production settings, WhiteNoise, a Celery worker and beat, PostgreSQL, Redis), clicked as the journeys of
tests/browser/ click, with the same labels. The researcher, the Family Partner and the outcome assessor use a
Norwegian browser; the others an English one.

Every journey fails on a JavaScript error, a Content-Security-Policy violation or a response >= 400 that the browser
saw, and when the server logged a 5xx. Each journey makes the families it needs (tests/stack/trial_families.py), so
that none depends on another's order or on what the demo's draw gave.
"""

import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect

from conftest import require
from families.models import ConsentDecision
from randomization.models import Arm
from tests.browser.conftest import CHROMIUM, NORWEGIAN_BROWSER, RESULTS_DIR, launched_chromium
from tests.browser.test_content_security_policy import watch_for_violations
from tests.browser.test_enrolment_journeys import field
from tests.stack.harness import ProductionStack
from tests.stack.trial_families import make_family
from tests.test_blinding import arm_traces

pytestmark = pytest.mark.browser

ENGLISH_BROWSER = "en-GB"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


def say(language: str, text) -> str:
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def nb(text) -> str:
    return say("nb", text)


def expect_norwegian(page: Page, text: str) -> None:
    """The page is in Norwegian: its lang, and a text of the catalogue that Norwegian writes otherwise than English."""
    assert nb(text) != say("en", text), f"{text!r} has no Norwegian text to tell the languages apart"
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.locator("body")).to_contain_text(nb(text))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    import os

    require(os.access(CHROMIUM, os.X_OK), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def open_page(chromium: Browser, stack: ProductionStack, request) -> Iterator[Callable[..., Page]]:
    """Opens a page of the stack in a fresh browser context. What a user would notice fails the test: a JavaScript
    error, a CSP violation, a response >= 400; and at the end a 5xx that Gunicorn logged meanwhile. On failure each
    page is kept as a screenshot in test-results/."""
    contexts = []
    problems: list[str] = []
    violations: list[list[str]] = []
    failed_before = request.session.testsfailed
    # Only this journey's: a fault test before it may have left a 503 of its own in the log.
    errors_before = len(stack.server_errors())

    def open_page(*, locale: str = ENGLISH_BROWSER, **options) -> Page:
        context = chromium.new_context(base_url=stack.base_url, ignore_https_errors=True, locale=locale, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"JavaScript error on {page.url}: {error}"))
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and problems.append(f"{response.status} for {response.request.method} {response.url}")
            ),
        )
        violations.append(watch_for_violations(page))
        return page

    yield open_page

    # The call's report is logged before the teardown: a failed journey has counted itself already.
    failed = request.session.testsfailed > failed_before
    if failed:
        RESULTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        pages = [page for context in contexts for page in context.pages]
        for number, page in enumerate(pages, start=1):
            page.screenshot(path=RESULTS_DIR / f"failed-stack-{name}-{number}.png", full_page=True)
    for context in contexts:
        context.close()
    problems.extend(violation for seen in violations for violation in seen)
    problems.extend(f"server error: {line}" for line in stack.server_errors()[errors_before:])
    if not failed and problems:
        pytest.fail("The browser saw problems:\n" + "\n".join(dict.fromkeys(problems)))


def sign_in(page: Page, stack: ProductionStack, username: str) -> None:
    page.goto("/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(stack.passwords[username])
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/accounts/login/" not in page.url, f"{username} could not sign in"


def menu(page: Page, language: str):
    return page.get_by_role("navigation", name=say(language, "Main menu"))


def answer(page: Page, question: str, choice) -> None:
    page.get_by_role("group", name=field(nb(question))).get_by_label(nb(choice), exact=True).check()


def test_a_researcher_registers_screens_consents_and_randomises_a_family_in_norwegian(open_page, stack):
    today = timezone.localdate()
    page = open_page(locale=NORWEGIAN_BROWSER)
    sign_in(page, stack, "researcher")
    menu(page, "nb").get_by_role("link", name=nb("Register a family"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nb("Register a referred family"))
    expect_norwegian(page, "Register a referred family")
    page.get_by_label(field(nb("Site"))).select_option(label="Øvre Eiker (OEI)")
    page.get_by_label(field(nb("Referral date"))).fill((today - timedelta(days=10)).isoformat())
    page.get_by_label(field(nb("Referred by"))).select_option(index=1)
    page.get_by_label(field(nb("Parent's birth year"))).first.fill("1990")
    page.get_by_label(field(nb("Child's birth date"))).first.fill((today - timedelta(days=365 * 7)).isoformat())
    page.get_by_label(field(nb("Parent's full name"))).fill("Kari Nordmann")
    page.get_by_label(field(nb("Phone"))).fill("912 34 567")
    page.get_by_role("button", name=nb("Register"), exact=True).click()

    expect(page).to_have_url(re.compile(r"/families/OEI-\d+/$"))
    study_id = page.locator("h1.study-id").inner_text().strip()
    registered = nb("Family %(study_id)s registered.") % {"study_id": study_id}
    expect(page.get_by_role("status").filter(has_text=registered)).to_have_count(1)

    page.get_by_role("link", name=nb("Screen"), exact=True).click()
    page.get_by_label(field(nb("Screening date"))).fill((today - timedelta(days=5)).isoformat())
    answer(page, "Is the family already involved with child welfare services?", "Yes")
    answer(page, "Do the children live under potentially harmful circumstances?", "Yes")
    page.locator("input[name=struggle_areas]").nth(0).check()
    page.locator("input[name=struggle_areas]").nth(1).check()
    page.get_by_role("button", name=nb("Save screening")).click()
    eligible = nb("%(study_id)s is eligible.") % {"study_id": study_id}
    expect(page.get_by_role("status").filter(has_text=eligible)).to_have_count(1)

    page.get_by_role("link", name=nb("Record consent or decline")).click()
    answer(page, "The family's answer", ConsentDecision.CONSENTED.label)
    page.get_by_label(field(nb("Date"))).fill((today - timedelta(days=2)).isoformat())
    page.get_by_label(field(nb("Consent form version"))).fill("v2.1")
    page.get_by_role("button", name=nb("Save the decision")).click()
    expect(page).to_have_url(re.compile(rf"/families/{study_id}/$"))
    expect(page.locator("main h1 ~ [data-status]")).to_have_attribute("data-status", "consented")

    # The assessor's part (the baseline, which the trial requires before randomising) is the assessor journey's.
    make_family(stack, "baseline", study_id=study_id)
    page.reload()
    page.get_by_role("link", name=nb("Randomise"), exact=True).click()
    confirm = nb("I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s).")
    page.get_by_label(field(confirm % {"study_id": study_id, "site": "Øvre Eiker", "code": "OEI"})).check()
    page.get_by_role("button", name=nb("Randomise now")).click()

    expect(page).to_have_url(re.compile(rf"/families/{study_id}/randomisation-receipt/$"))
    arms = "|".join(re.escape(nb(arm.label)) for arm in Arm)
    said = nb("%(study_id)s is randomised to: %(arm)s.") % {"study_id": study_id, "arm": "ARM"}
    randomised = re.compile(re.escape(said).replace("ARM", f"({arms})"))
    expect(page.get_by_role("status").filter(has_text=randomised)).to_have_count(1)
    expect(page.locator("[data-receipt] [data-randomisation-id]")).to_have_text(re.compile(r"^OEI-R\d+$"))
    assert stack.sql("SELECT status FROM families_family WHERE study_id = %s", (study_id,)) == [("randomised",)]


def test_a_family_partner_logs_a_contact_on_a_phone_in_norwegian(open_page, stack):
    family = make_family(stack, "assigned")["study_id"]
    page = open_page(locale=NORWEGIAN_BROWSER, **PHONE)
    sign_in(page, stack, "partner")

    expect(page).to_have_url(re.compile(r"/partner/$"))
    expect_norwegian(page, "My families")
    card = page.locator(f"[data-partner-family='{family}']")
    card.get_by_role("link", name=re.compile(rf"^{re.escape(nb('Log a contact'))}\b")).tap()

    expect(page).to_have_url(re.compile(rf"/partner/families/{family}/contacts/new/$"))
    page.locator("#id_duration_quarters").select_option(value="6")  # 1 h 30 min
    page.locator("input[name=kind][value=home_visit]").check()
    page.locator("input[name=elements]").first.check()
    page.locator("#id_notes").fill("Hjemmebesøk: la en plan for morgenrutinene.")
    page.locator("main form.contact-form button[type=submit]").tap()

    expect(page).to_have_url(re.compile(r"/partner/$"))
    expect(page.locator("main [role=status]").filter(has_text="1 t 30 min")).to_have_count(1)
    expect(card.locator("[data-hours]").first).to_contain_text("1,5")
    rows = stack.sql(
        "SELECT c.duration_quarters FROM visits_contact c JOIN families_family f ON f.id = c.family_id "
        "WHERE f.study_id = %s",
        (family,),
    )
    assert rows == [(6,)]


def test_an_outcome_assessor_records_an_assessment_from_the_grid_and_sees_no_arm(open_page, stack):
    family = make_family(stack, "randomised")
    three = family["assessments"][3]
    page = open_page(locale=NORWEGIAN_BROWSER)
    seen: list[str] = []
    page.on("load", lambda loaded: seen.append(loaded.content()))
    sign_in(page, stack, "assessor")

    expect_norwegian(page, "My worklist")
    page.get_by_role("link", name=nb("All follow-up assessments")).first.click()
    page.get_by_label(nb("Site")).select_option(label="Øvre Eiker (OEI)")
    page.get_by_role("button", name=nb("Show")).click()
    cell = page.locator(f"#assessment-{three}")
    cell.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(family["study_id"])
    form = page.locator("[data-record-form]")
    form.get_by_label(nb("completed"), exact=True).check()
    form.get_by_label(field(nb("Date"))).fill(timezone.localdate().strftime("%d.%m.%Y"))
    form.get_by_label(nb("home visit"), exact=True).check()
    form.get_by_label("SDQ", exact=True).check()
    form.get_by_label(nb("Don't know"), exact=True).check()
    form.get_by_role("button", name=nb("Record")).click()
    # Today is before the 3-month window: the form asks to confirm a date outside it.
    confirmation = page.locator("[data-outside-window-confirmation]")
    confirmation.get_by_role("checkbox").check()
    page.locator("[data-record-form]").get_by_role("button", name=nb("Record")).click()

    expect(page.get_by_role("status").filter(has_text=family["study_id"])).to_have_count(1)
    expect(page.locator(f"#assessment-{three}")).to_have_attribute("data-state", "completed")
    seen.append(page.content())
    assert len(seen) >= 4
    assert [arm_traces(body) for body in seen if arm_traces(body)] == []
    assert stack.sql("SELECT status FROM followups_assessment WHERE id = %s", (three,)) == [("completed",)]


def test_the_principal_investigator_downloads_the_feasibility_report_as_pdf_and_excel(open_page, stack, tmp_path):
    page = open_page()
    sign_in(page, stack, "pi")
    page.get_by_role("link", name=say("en", "Reports"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Feasibility report")
    page.get_by_label("Site", exact=True).select_option("OEI")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page).to_have_url(re.compile(r"site=OEI"))

    with page.expect_download() as download:
        page.get_by_role("button", name="Download PDF").click()
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Excel").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert {"flow", "progression"} <= set(workbook.sheetnames)
    assert workbook["flow"].max_row > 1


def test_a_data_manager_downloads_a_dataset_and_the_audit_log(open_page, stack):
    family = make_family(stack, "consented")["study_id"]
    page = open_page()
    sign_in(page, stack, "datamanager")
    page.get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Analysis datasets")).to_be_visible()
    page.get_by_label("Dataset").select_option("families")
    page.get_by_label("Format").select_option("csv")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".csv")
    dataset = download.value.path().read_text(encoding="utf-8-sig")
    assert dataset.splitlines()[0].split(",")[0] == "study_id"
    assert any(line.startswith(f"{family},") for line in dataset.splitlines())

    menu(page, "en").get_by_role("link", name="Audit log", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    assert download.value.suggested_filename.startswith("audit-log-")
    audit = download.value.path().read_text(encoding="utf-8")
    assert family in audit
    assert "dataset" in audit.casefold()  # the download just made is in the trail


def test_an_administrator_revokes_a_researchers_api_token_in_the_admin(open_page, stack):
    key = stack.manage("create_api_token", "researcher", "--name", "stack journey").stdout.strip()
    me = stack.url("/api/v1/me/")
    assert stack.client().get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code == 200
    prefix = key.split("_")[1]

    page = open_page()
    sign_in(page, stack, "admin")
    page.goto("/admin/")  # an administrator opens the admin by its address: the menu has no link to it
    page.get_by_role("link", name="API tokens").first.click()
    row = page.locator("#result_list tr").filter(has_text="stack journey")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(prefix)
    row.locator("input[name=_selected_action]").check()
    page.locator("select[name=action]").select_option("revoke_selected")
    page.locator("button[name=index]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()

    answer_after = stack.client().get(me, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer_after.status_code == 401
    assert answer_after.headers["Content-Type"].startswith("application/problem+json")
