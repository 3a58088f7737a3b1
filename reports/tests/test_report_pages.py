"""The feasibility report's page and downloads: who may open them, the filters, each file, its audit event, the PDF's
failure, both languages. The numbers are the sample report's (sample.py) unless a test says otherwise; the figures'
own tests check the numbers."""

import io
import logging
import re
import zipfile
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from reports import report_pages
from reports.render import pdf
from reports.tests.sample import sample_report
from reports.tests.test_render import pdf_text
from tests.test_headers import INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE
from trial.models import AuditEvent, EventKind, Site
from trial.roles import Role
from trial.tests.factories import SiteFactory, UserFactory

DOWNLOADS = ["reports:report_pdf", "reports:report_xlsx", "reports:report_csv"]


@pytest.fixture
def asked(monkeypatch):
    """The filters the figures were asked for; the sample report comes back."""
    filters = []

    def build_report(given):
        filters.append(given)
        return sample_report(site_ids=given.site_ids)

    monkeypatch.setattr(report_pages, "build_report", build_report)
    return filters


@pytest.fixture
def lil(db):
    return SiteFactory(code="LIL")


@pytest.fixture
def researcher_of_two(oei, lar):
    return UserFactory(username="rita", roles=[Role.RESEARCHER], sites=[oei, lar])


def test_it_shows_the_report_to_the_principal_investigator(client, paula, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report"))

    assert response.status_code == 200
    page = response.content.decode()
    assert asked[0].site_ids is None
    assert 'data-box="assessed" data-n="61"' in page
    assert 'data-box="randomised" data-n="38"' in page
    assert re.search(r'data-criterion="consent" data-colour="amber"', page)
    assert "Amber" in page
    assert "Consent rate, green from: 85.0% → 90.0%" in page
    for table in sample_report().tables:
        assert f'data-report-table="{table.key}"' in page


@pytest.mark.parametrize("user", ["paula", "dina", "alice"])
def test_it_lets_the_pi_the_data_manager_and_researchers_open_it(client, request, user, asked):
    client.force_login(request.getfixturevalue(user))

    assert client.get(reverse("reports:report")).status_code == 200


@pytest.mark.parametrize("user", ["carol", "frank", "adam"])
def test_it_refuses_assessors_partners_and_administrators(client, request, user, asked):
    client.force_login(request.getfixturevalue(user))

    for name in ["reports:report", *DOWNLOADS]:
        assert client.get(reverse(name)).status_code == 403, name
    assert asked == []
    assert not AuditEvent.objects.filter(kind=EventKind.REPORT_DOWNLOADED).exists()


def test_it_refuses_a_pi_who_is_also_an_outcome_assessor(client, oei, asked):
    """The report is by arm throughout: whoever holds the assessor role is blinded, whatever else they hold."""
    both = UserFactory(username="petra", roles=[Role.PRINCIPAL_INVESTIGATOR, Role.OUTCOME_ASSESSOR], sites=[oei])
    client.force_login(both)

    for name in ["reports:report", *DOWNLOADS]:
        assert client.get(reverse(name)).status_code == 403, name
    assert asked == []


def test_it_refuses_a_user_without_a_role_and_sends_the_anonymous_to_log_in(client, db, asked):
    for name in ["reports:report", *DOWNLOADS]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    client.force_login(UserFactory(username="nora"))
    for name in ["reports:report", *DOWNLOADS]:
        assert client.get(reverse(name)).status_code == 403


def test_it_offers_the_menu_item_to_who_may_open_the_report(client, paula, alice, carol, frank, asked):
    link = f'href="{reverse("reports:report")}"'
    for user, shown in ((paula, True), (alice, True), (carol, False), (frank, False)):
        client.force_login(user)
        assert (link in client.get(reverse("password_change")).content.decode()) is shown, user.username


def test_a_researcher_chooses_only_among_their_own_sites(client, alice, oei, lar, lil, asked):
    client.force_login(alice)

    page = client.get(reverse("reports:report")).content.decode()

    options = re.findall(r'<option value="([A-Z]*)"', page)
    assert options == ["", "OEI"]
    assert "All my sites" in page and "Whole trial" not in page
    assert asked[0].site_ids == frozenset({oei.pk})


def test_a_researcher_of_two_sites_sees_both_and_the_report_covers_both(client, researcher_of_two, oei, lar, asked):
    client.force_login(researcher_of_two)

    client.get(reverse("reports:report"))
    client.get(reverse("reports:report"), {"site": "LAR"})

    assert [filters.site_ids for filters in asked] == [frozenset({oei.pk, lar.pk}), frozenset({lar.pk})]


def test_a_researcher_cannot_ask_for_another_sites_report(client, alice, lar, asked):
    client.force_login(alice)

    response = client.get(reverse("reports:report"), {"site": "LAR"})

    assert response.status_code == 200
    assert "data-report-errors" in response.content.decode()
    assert asked == []
    for name in DOWNLOADS:
        response = client.get(reverse(name), {"site": "LAR"})
        assert response.status_code == 200 and "Content-Disposition" not in response
    assert asked == []
    assert not AuditEvent.objects.filter(kind=EventKind.REPORT_DOWNLOADED).exists()


def test_the_pi_chooses_a_site_and_dates(client, paula, oei, lar, lil, asked):
    client.force_login(paula)

    page = client.get(reverse("reports:report"), {"site": "LIL", "start": "2026-01-01", "end": "2026-06-30"})

    assert page.status_code == 200
    assert asked[0].site_ids == frozenset({lil.pk})
    assert (asked[0].start, asked[0].end) == (date(2026, 1, 1), date(2026, 6, 30))
    assert "Whole trial" in page.content.decode()


def test_norwegian_dates_are_typed_as_norwegians_write_them(client, paula, asked):
    client.force_login(paula)

    client.get(reverse("reports:report"), {"start": "01.02.2026", "end": "28.02.2026"}, HTTP_ACCEPT_LANGUAGE="nb")

    assert (asked[0].start, asked[0].end) == (date(2026, 2, 1), date(2026, 2, 28))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "31.02.2026"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": "2026-06-01", "end": "2026-05-31"}, "end"),
        ({"start": "0202-01-01"}, "start"),
        ({"end": "9999-12-31"}, "end"),
        ({"site": "XYZ"}, "site"),
        ({"language": "de"}, "language"),
    ],
)
def test_bad_filters_are_errors_on_the_page_never_a_report_nor_a_500(client, paula, asked, query, field):
    client.force_login(paula)

    response = client.get(reverse("reports:report"), query)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert "data-report-errors" in response.content.decode()
    assert asked == []


def test_an_end_before_the_start_says_so(client, paula, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report"), {"start": "2026-06-01", "end": "2026-05-31"})

    assert "The end date is before the start date." in response.content.decode()


def test_the_page_has_no_inline_style_script_or_handler(client, paula, asked):
    client.force_login(paula)

    page = client.get(reverse("reports:report")).content.decode()

    assert INLINE_STYLE.findall(page) + INLINE_SCRIPT.findall(page) + INLINE_HANDLER.findall(page) == []


def test_the_page_shows_failed_checks_in_a_red_alert_and_passed_ones_quietly(client, paula, asked):
    client.force_login(paula)

    page = client.get(reverse("reports:report")).content.decode()

    alert = re.search(r'<div class="alert alert-danger[^"]*" role="alert" data-failed-checks>(.*?)</div>', page, re.S)
    assert alert is not None
    assert "Excluded = the sum of its reasons" in alert.group(1)
    assert "Assessed = excluded + randomised" not in alert.group(1)
    assert page.count('data-check="passed"') == 2


def test_the_page_is_in_norwegian_for_a_norwegian_reader(client, paula, asked):
    client.force_login(paula)

    page = client.get(reverse("reports:report"), HTTP_ACCEPT_LANGUAGE="nb").content.decode()

    assert "Gjennomførbarhetsrapport" in page
    assert "84,4 %" in page
    assert "01.06.2026" in page


# --- The downloads -----------------------------------------------------------------------------------------


def download_event() -> AuditEvent:
    return AuditEvent.objects.get(kind=EventKind.REPORT_DOWNLOADED)


def test_the_pdf_download_is_the_report_and_is_recorded(client, paula, oei, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report_pdf"), {"site": "OEI", "start": "2026-06-01", "language": "en"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="feasibility-report-OEI-{today}.pdf"'
    assert "no-store" in response["Cache-Control"]
    text = pdf_text(response.content)
    assert "Assessed for eligibility (n = 61)" in text
    event = download_event()
    assert (event.user, event.site) == (paula, oei)
    assert event.details == {"format": "pdf", "sites": ["OEI"], "start": "2026-06-01", "end": None, "language": "en"}


def test_the_pdf_is_made_in_the_language_chosen_not_the_pages(client, paula, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report_pdf"), {"language": "nb"})

    text = pdf_text(response.content)
    assert "Gjennomførbarhetsrapport" in text
    assert "Feasibility report" not in text
    assert download_event().details["language"] == "nb"


def test_a_download_is_in_the_pages_language_when_none_is_chosen(client, paula, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report_xlsx"), HTTP_ACCEPT_LANGUAGE="nb")

    assert response.status_code == 200
    assert download_event().details["language"] == "nb"


def test_the_excel_download_has_one_sheet_per_table_and_is_recorded(client, paula, oei, lar, lil, asked):
    client.force_login(paula)

    response = client.get(reverse("reports:report_xlsx"), {"end": "2026-10-31"})

    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="feasibility-report-trial-{today}.xlsx"'
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == [table.key for table in sample_report().tables]
    event = download_event()
    assert event.site is None
    codes = list(Site.objects.order_by("code").values_list("code", flat=True))
    assert event.details == {"format": "xlsx", "sites": codes, "start": None, "end": "2026-10-31", "language": "en"}


def test_the_csv_download_is_a_zip_of_one_file_per_table_and_is_recorded(client, researcher_of_two, asked):
    client.force_login(researcher_of_two)

    response = client.get(reverse("reports:report_csv"))

    assert response["Content-Type"] == "application/zip"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="feasibility-report-LAR-OEI-{today}.zip"'
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert names == [f"{table.key}.csv" for table in sample_report().tables]
    event = download_event()
    assert event.site is None
    assert event.details["format"] == "csv" and event.details["sites"] == ["LAR", "OEI"]


def test_a_failed_pdf_answers_a_clear_error_and_records_no_download(client, paula, asked, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise OSError("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(pdf.HTML, "write_pdf", broken)
    client.force_login(paula)

    with caplog.at_level(logging.ERROR, logger="reports.report_pages"):
        response = client.get(reverse("reports:report_pdf"), {"site": "", "start": "2026-06-01"})

    assert response.status_code == 503
    page = response.content.decode()
    assert "The PDF could not be made" in page
    assert f'href="{reverse("reports:report_xlsx")}?site=&amp;start=2026-06-01"' in page
    assert "libpango" not in page
    assert any("PDF could not be made" in record.getMessage() for record in caplog.records)
    assert not AuditEvent.objects.filter(kind=EventKind.REPORT_DOWNLOADED).exists()


def test_the_pdf_error_page_is_in_norwegian_for_a_norwegian_reader(client, paula, asked, monkeypatch):
    monkeypatch.setattr(pdf.HTML, "write_pdf", lambda *args, **kwargs: 1 / 0)
    client.force_login(paula)

    response = client.get(reverse("reports:report_pdf"), HTTP_ACCEPT_LANGUAGE="nb")

    assert response.status_code == 503
    assert "PDF-en kunne ikke lages" in response.content.decode()


def test_the_downloads_take_no_post(client, paula, asked):
    client.force_login(paula)

    for name in ["reports:report", *DOWNLOADS]:
        assert client.post(reverse(name)).status_code == 405


# --- On the real figures -----------------------------------------------------------------------------------


def test_the_page_and_every_download_work_on_an_empty_trial(client, paula, oei, lar, lil):
    client.force_login(paula)

    assert client.get(reverse("reports:report")).status_code == 200
    for name in DOWNLOADS:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert "attachment" in response["Content-Disposition"]
    assert AuditEvent.objects.filter(kind=EventKind.REPORT_DOWNLOADED).count() == 3


def test_the_language_of_the_downloads_is_the_pages_until_another_is_chosen(client, paula, asked):
    client.force_login(paula)

    norwegian = client.get(reverse("reports:report"), HTTP_ACCEPT_LANGUAGE="nb").content.decode()
    chosen = client.get(reverse("reports:report"), {"language": "en"}, HTTP_ACCEPT_LANGUAGE="nb").content.decode()

    assert re.search(r'<option value="nb" lang="nb" selected>', norwegian)
    assert re.search(r'<option value="en" lang="en" selected>', chosen)


HOSTILE = [
    "²",
    "٣",
    "9" * 5000,
    "\x00",
    "[" * 3000 + "]" * 3000,
    "0000-00-00",
    "99.99.9999",
    "31.12.99999",
    " ",
    "OEI\x00",
]


@pytest.mark.parametrize("name", ["reports:report", *DOWNLOADS])
@pytest.mark.parametrize("field", ["site", "start", "end", "language"])
def test_hostile_filters_are_never_a_server_error(client, paula, oei, name, field):
    """On the real figures: every hostile value in each filter is a form error, never a 500 nor a file."""
    client.force_login(paula)

    for value in HOSTILE:
        response = client.get(reverse(name), {field: value})
        assert response.status_code == 200, (field, value)
        assert "Content-Disposition" not in response, (field, value)
    response = client.get(reverse(name), {field: ["", "x", "2026-01-01"]})
    assert response.status_code == 200


def test_a_researcher_without_a_site_may_not_open_the_report(client, oei, alice, asked):
    """A researcher who is not yet a member of any site has no families to see: no report, no menu item."""
    client.force_login(UserFactory(username="ruth", roles=[Role.RESEARCHER]))

    for name in ["reports:report", *DOWNLOADS]:
        assert client.get(reverse(name)).status_code == 403, name
    assert f'href="{reverse("reports:report")}"' not in client.get(reverse("password_change")).content.decode()
    assert asked == []


def test_an_excel_file_that_cannot_be_written_answers_a_clear_error_for_that_download_only(
    client, paula, asked, monkeypatch, tmp_path, caplog
):
    # The Excel writer works in temporary files: a temporary folder it cannot write to, as on a full disk.
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "gone"))
    client.force_login(paula)

    with caplog.at_level(logging.ERROR, logger="reports.report_pages"):
        response = client.get(reverse("reports:report_xlsx"), {"site": "", "start": "2026-06-01"})

    assert response.status_code == 503
    page = response.content.decode()
    assert "The file could not be made" in page
    assert f'href="{reverse("reports:report")}?site=&amp;start=2026-06-01"' in page
    assert "gone" not in page
    assert any("could not be written" in record.getMessage() for record in caplog.records)
    assert not AuditEvent.objects.filter(kind=EventKind.REPORT_DOWNLOADED).exists()
    # The page and the other downloads go on.
    assert client.get(reverse("reports:report")).status_code == 200
    assert client.get(reverse("reports:report_csv")).status_code == 200
