"""The feasibility report, clicked through in a real browser, in Norwegian and in English: the principal investigator
opens Reports from the menu, chooses a site, reads the flow diagram and the progression criteria, downloads the PDF and
the Excel file (as a browser downloads them), and the test reads both files (pdftotext, openpyxl) and finds in them
every number the page showed. A researcher finds only their own site to choose."""

import io
import re
import shutil
import subprocess

import pytest
from django.utils import translation
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from families.tests.factories import family_in_state
from randomization.models import Allocation, Arm
from reports.render.values import percent
from tests.browser.conftest import NORWEGIAN_BROWSER
from tests.browser.test_content_security_policy import watch_for_violations
from trial.models import TrialSettings
from visits.tests.factories import assigned_family, log_contact, partner, randomised_family

pytestmark = pytest.mark.browser

BROWSERS = {"nb": NORWEGIAN_BROWSER, "en": "en-GB"}


@pytest.fixture(params=list(BROWSERS))
def language(request) -> str:
    return request.param


def say(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


@pytest.fixture
def small_trial(oei, lar, alice, bob):
    """Øvre Eiker: an intervention family with its Family Partner and a contact, one waiting for a partner, a
    control family, an ineligible and a declined family; Larvik: a control family (left out by the site filter)."""
    fenna = partner(oei, "fenna")
    log_contact(assigned_family(oei, researcher=alice, to=fenna), by=fenna.user)
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    family_in_state("ineligible", site=oei, by=alice)
    family_in_state("declined", site=oei, by=alice)
    randomised_family(lar, researcher=bob, arm=Arm.CONTROL)


def flow_on_page(page: Page) -> list[dict]:
    """Every line of the flow diagram that carries a count: its box's key, its count and its words."""
    return page.locator("svg.report-flow text[data-box]").evaluate_all(
        "texts => texts.map(t => ({key: t.dataset.box, n: Number(t.dataset.n), text: t.textContent}))"
    )


def criteria_on_page(page: Page) -> dict[str, str]:
    return dict(
        page.locator("[data-criterion]").evaluate_all(
            "rows => rows.map(r => [r.dataset.criterion, r.querySelector('[data-value]').textContent.trim()])"
        )
    )


def pdf_text(path) -> str:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext (poppler-utils) is not installed"
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode()
    return re.sub(r"[ \xa0]+", " ", text)


def excel_flow_key(arm: str, box: str, time_points: list[int]) -> str:
    """The flow table's (arm, box) as the page's key for the same box ("excluded.declined": a reason, kept as is)."""
    if not arm or "." in box:
        return box
    if box.startswith("assessed_"):
        return f"{arm}-follow_up-{time_points.index(int(box.removeprefix('assessed_')))}"
    return f"{arm}-{box}"


def test_a_pi_downloads_the_report_of_a_site_and_finds_the_pages_numbers_in_both_files(
    open_page, log_in, paula, small_trial, oei, results_dir, language
):
    page = open_page(locale=BROWSERS[language])
    violations = watch_for_violations(page)
    log_in(page, paula)

    page.get_by_role("link", name=say(language, "Reports"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Feasibility report"))
    page.get_by_label(say(language, "Site"), exact=True).select_option("OEI")
    page.get_by_role("button", name=say(language, "Show"), exact=True).click()
    expect(page).to_have_url(re.compile(r"site=OEI"))
    page.screenshot(path=results_dir / f"journey-report-{language}.png", full_page=True)
    # The flow diagram alone, for the closing note.
    page.locator("svg.report-flow").screenshot(path=results_dir / f"report-flow-diagram-{language}.png")

    lines = flow_on_page(page)
    counts = {line["key"]: line["n"] for line in lines}
    randomised_at_oei = Allocation.objects.filter(family__site=oei).count()
    assert counts["randomised"] == randomised_at_oei
    assert counts["intervention-allocated"] + counts["control-allocated"] == randomised_at_oei
    assert counts["assessed"] == randomised_at_oei + 2  # and the ineligible and the declined family
    assert counts["intervention-received"] == 1
    criteria = criteria_on_page(page)
    assert set(criteria) == {"recruitment", "consent", "retention", "adherence"}

    # The PDF, in the page's language (the form's default).
    with page.expect_download() as download:
        page.get_by_role("button", name=say(language, "Download PDF")).click()
    assert re.fullmatch(r"feasibility-report-OEI-\d{4}-\d{2}-\d{2}\.pdf", download.value.suggested_filename)
    text = pdf_text(download.value.path())
    assert say(language, "Feasibility report") in text
    for line in lines:
        assert re.sub(r"[ \xa0]+", " ", line["text"]) in text, line
    for key, value in criteria.items():
        assert value in text, key

    # The Excel file: the flow's counts and the progression values, as numbers.
    with page.expect_download() as download:
        page.get_by_role("button", name=say(language, "Download Excel")).click()
    assert download.value.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    time_points = [0, *sorted(TrialSettings.current().follow_up_months)]
    in_excel = {
        excel_flow_key(arm, box, time_points): n
        for arm, box, _arm_label, _label, n in workbook["flow"].iter_rows(min_row=2, values_only=True)
    }
    main_boxes = {key: n for key, n in counts.items() if "-reason-" not in key}
    assert {key: in_excel[key] for key in main_boxes} == main_boxes
    header = [cell.value for cell in workbook["progression"][1]]
    code, value = header.index(say(language, "Code")), header.index(say(language, "Value"))
    with translation.override(language):
        in_excel_values = {
            row[code]: percent(row[value]) for row in workbook["progression"].iter_rows(min_row=2, values_only=True)
        }
    assert in_excel_values == criteria
    # The inline drawings keep to the site's Content-Security-Policy (presentation attributes, no style).
    assert violations == []


def test_a_researcher_chooses_only_their_own_site(open_page, log_in, alice, lar, trial_settings, language):
    page = open_page(locale=BROWSERS[language])
    log_in(page, alice)

    page.get_by_role("link", name=say(language, "Reports"), exact=True).click()

    options = page.get_by_label(say(language, "Site"), exact=True).locator("option")
    expect(options).to_have_text([say(language, "All my sites"), "Øvre Eiker (OEI)"])
