"""The data manager's datasets journey, clicked through in a real browser: open Datasets from the menu, read the
codebook, download the families dataset as CSV and as a Stata file; the test reads both files."""

import csv
import io

import pyreadstat
import pytest
from playwright.sync_api import Page, expect

from families.tests.factories import family_in_state
from randomization.models import Arm
from visits.tests.factories import randomised_family

pytestmark = pytest.mark.browser


def test_a_data_manager_downloads_the_families_csv_and_stata_file(open_page, log_in, oei, alice, dina, tmp_path):
    referred = family_in_state("referred", site=oei, by=alice)
    randomised = randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
    page: Page = open_page(locale="en-GB")
    log_in(page, dina)
    page.get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Analysis datasets")).to_be_visible()
    expect(page.locator("[data-codebook=families]")).to_contain_text("study_id")

    page.get_by_label("Dataset").select_option("families")
    page.get_by_label("Format").select_option("csv")
    page.get_by_label("codes").check()
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download").click()
    assert csv_download.value.suggested_filename.endswith(".csv")
    with open(csv_download.value.path(), encoding="utf-8-sig") as downloaded:
        text = downloaded.read()
    rows = {row["study_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows[referred.study_id]["status"] == "referred"
    assert rows[randomised.study_id]["arm"] == "intervention"

    page.get_by_label("Format").select_option("dta")
    with page.expect_download() as stata_download:
        page.get_by_role("button", name="Download").click()
    assert stata_download.value.suggested_filename.endswith(".dta")
    path = tmp_path / "families.dta"
    stata_download.value.save_as(path)
    frame, meta = pyreadstat.read_dta(str(path))
    assert set(frame["study_id"]) == set(rows)
    arm_code = frame.loc[frame["study_id"] == randomised.study_id, "arm"].iloc[0]
    assert meta.variable_value_labels["arm"][arm_code] == "Family Partner intervention"
