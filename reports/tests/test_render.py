"""The renderers against a hand-built report (sample.py): every number of the flow in the PDF, one sheet per table in
Excel with real numbers and dates, one CSV file per table, formulas made inert, both languages."""

import csv
import io
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from datetime import date, datetime

import pytest
from django.utils import translation
from openpyxl import load_workbook

from reports.render import csvzip, pdf, svg, xlsx
from reports.render.html import report_context
from reports.render.values import percent, shown
from reports.tables import Box, Reason
from reports.tests.sample import FORMULA_LABEL, sample_report
from tests.test_headers import INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE


def pdf_text(content: bytes) -> str:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext (poppler-utils) is not installed"
    # The PDF we made, to poppler's pdftotext.
    run = subprocess.run([pdftotext, "-layout", "-", "-"], input=content, capture_output=True, check=True)  # noqa: S603
    text = run.stdout
    # The flow's counts keep "(n = 38)" together with non-breaking spaces; pdftotext keeps them.
    return re.sub(r"[ \xa0]+", " ", text.decode())


def flow_lines(report) -> list[str]:
    """Every box of the flow diagram (and every reason) as the diagram writes it."""
    flow = report.flow
    boxes: list[Box] = [flow.assessed, flow.excluded, flow.randomised]
    for arm in flow.arms:
        boxes += [arm.allocated, arm.received, arm.not_received, *arm.follow_ups, arm.lost, arm.withdrawn, arm.analysed]
    items: list[Box | Reason] = []
    for box in boxes:
        items += [box, *box.reasons]
    return [svg.counted(item.label, item.n).replace("\xa0", " ") for item in items]


def test_the_pdf_has_every_box_of_the_flow_and_the_progression_values():
    report = sample_report()

    text = pdf_text(pdf.render_pdf(report))

    assert text.startswith("Feasibility report") or "Feasibility report" in text.splitlines()[0]
    for line in flow_lines(report):
        # A long box label may wrap: its count stays on one line with the label's last words.
        label, count = line.rsplit(" (n = ", 1)
        assert f"(n = {count}" in text
        assert label.split()[0] in text, line
    assert "Assessed for eligibility (n = 61)" in text
    assert "Randomised (n = 38)" in text
    assert "Excluded = the sum of its reasons: 23 ≠ 14 + 6 + 2" in text
    for value in ("84.4%", "86.4%", "37.5%", "71.4%\u201392.3%"):
        assert value in text, value
    # pdftotext keeps the spaces of a right-aligned cell's "38 / 45" or not, as the cell's width goes.
    assert re.search(r"\b38 ?/ ?45\b", text)
    assert re.search(r"\b3 ?/ ?8\b", text)
    for table in report.tables:
        assert str(table.title) in text


def test_the_pdf_in_norwegian_has_a_norwegian_title_and_norwegian_numbers():
    with translation.override("nb"):
        text = pdf_text(pdf.render_pdf(sample_report()))

    assert "Gjennomførbarhetsrapport" in text
    assert "84,4 %" in text
    assert "01.06.2026" in text


def test_the_page_and_the_pdf_draw_no_inline_style_script_or_handler():
    context = report_context(sample_report())
    for drawing in (context["flow_svg"], context["chart_svg"]):
        assert INLINE_STYLE.findall(drawing) == []
        assert INLINE_SCRIPT.findall(drawing) == []
        assert INLINE_HANDLER.findall(drawing) == []


def test_the_flow_diagram_carries_every_count_with_its_box():
    report = sample_report()

    drawing = svg.flow_diagram(report.flow)

    counts = dict(re.findall(r'data-box="([^"]+)" data-n="(\d+)"', drawing))
    assert counts["assessed"] == "61"
    assert counts["excluded"] == "23"
    assert counts["excluded-reason-0"] == "14"
    assert counts["randomised"] == "38"
    for arm in report.flow.arms:
        assert counts[f"{arm.arm}-allocated"] == str(arm.allocated.n)
        assert counts[f"{arm.arm}-received"] == str(arm.received.n)
        assert counts[f"{arm.arm}-analysed"] == str(arm.analysed.n)
        for index, box in enumerate(arm.follow_ups):
            assert counts[f"{arm.arm}-follow_up-{index}"] == str(box.n)


def test_the_flow_diagram_escapes_what_it_draws():
    report = sample_report()
    flow = report.flow
    hostile = Box('<script>alert("x")</script>', 3, [Reason("<img src=x onerror=alert(1)>", 3)])

    drawing = svg.flow_diagram(type(flow)(flow.assessed, hostile, flow.randomised, flow.arms, flow.checks))

    assert "<script>" not in drawing
    assert "<img" not in drawing
    assert "&lt;script&gt;" in drawing


def test_the_recruitment_chart_has_a_bar_per_site_and_month_and_the_target():
    report = sample_report()

    chart = svg.recruitment_chart(report.recruitment)

    bars = re.findall(r'data-site="(\w+)" data-month="([\d-]+)" data-n="(\d+)"', chart)
    expected = {(c.site_code, c.month.isoformat(), str(c.randomised)) for c in report.recruitment if c.randomised}
    assert set(bars) == expected
    target = re.search(r'data-target="([^"]+)"', chart)
    assert target is not None and target.group(1).split() == ["3.75"] * 5


def test_an_empty_chart_says_so():
    assert "No family randomised in this period." in svg.recruitment_chart([])


def test_the_workbook_has_one_sheet_per_table_with_a_frozen_bold_header():
    report = sample_report()

    workbook = load_workbook(io.BytesIO(xlsx.render_xlsx(report)))

    assert workbook.sheetnames == [table.key for table in report.tables]
    for table, sheet in zip(report.tables, workbook.worksheets, strict=True):
        assert sheet.freeze_panes == "A2"
        header = [cell.value for cell in sheet[1]]
        assert header == [str(column.label) for column in table.columns]
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.max_row == len(table.rows) + 1
        assert sheet.column_dimensions["A"].width >= 8


def test_the_workbook_has_real_numbers_and_dates_and_inert_formulas():
    workbook = load_workbook(io.BytesIO(xlsx.render_xlsx(sample_report())))

    flow = workbook["flow"]
    assert flow["D2"].value == 61 and isinstance(flow["D2"].value, int)
    assert flow["C4"].value == "'" + FORMULA_LABEL
    assert flow["C4"].data_type == "s"
    recruitment = workbook["recruitment_by_month"]
    assert recruitment["B2"].value == datetime(2026, 6, 1)
    assert recruitment["B2"].is_date
    assert recruitment["D2"].value == 1.5
    assert recruitment["E2"].number_format == "0.0%"
    assert recruitment["E2"].value == pytest.approx(2 / 1.5)
    withdrawals = workbook["withdrawals"]
    assert withdrawals["B2"].value == datetime(2026, 8, 14) and withdrawals["B2"].number_format == "yyyy-mm-dd"
    assert withdrawals["D2"].value == 9.5
    assert withdrawals["C4"].value == "'-2 reasons"
    assert withdrawals["B4"].value is None


def test_the_workbook_in_norwegian_has_norwegian_date_formats():
    with translation.override("nb"):
        workbook = load_workbook(io.BytesIO(xlsx.render_xlsx(sample_report())))

    assert workbook["withdrawals"]["B2"].number_format == "dd.mm.yyyy"


def test_the_csv_zip_has_one_file_per_table_headed_by_the_columns_keys():
    report = sample_report()

    archive = zipfile.ZipFile(io.BytesIO(csvzip.render_csv_zip(report)))

    assert archive.namelist() == [f"{table.key}.csv" for table in report.tables]
    for table in report.tables:
        rows = list(csv.reader(io.StringIO(archive.read(f"{table.key}.csv").decode("utf-8"))))
        assert rows[0] == [column.key for column in table.columns]
        assert len(rows) == len(table.rows) + 1
    flow = list(csv.reader(io.StringIO(archive.read("flow.csv").decode("utf-8"))))
    assert flow[1] == ["enrolment", "", "Assessed for eligibility", "61"]
    assert flow[3][2] == "'" + FORMULA_LABEL
    withdrawals = list(csv.reader(io.StringIO(archive.read("withdrawals.csv").decode("utf-8"))))
    assert withdrawals[1] == ["OEI-004", "2026-08-14", "Did not want to continue", "9.5"]
    assert withdrawals[2][2] == "Moved to Ålesund"
    assert withdrawals[3] == ["LIL-002", "", "'-2 reasons", ""]


@pytest.mark.parametrize(
    ("language", "value", "kind", "text"),
    [
        ("en", 0.125, "percent", "12.5%"),
        ("nb", 0.125, "percent", "12,5 %"),
        ("en", 2.25, "float", "2.3"),
        ("nb", 2.24, "float", "2,2"),
        ("en", 0.86364, "percent", "86.4%"),
        ("nb", 7, "int", "7"),
        ("en", date(2026, 3, 1), "date", "2026-03-01"),
        ("nb", date(2026, 3, 1), "date", "01.03.2026"),
        ("en", date(2026, 3, 1), "month", "March 2026"),
        ("nb", None, "int", "\u2013"),
    ],
)
def test_values_are_shown_in_the_active_language(language, value, kind, text):
    with translation.override(language):
        assert shown(value, kind) == text


def test_a_share_of_nothing_is_a_dash():
    assert percent(None) == "\u2013"


def test_codes_may_break_after_their_dots_on_paper_only():
    """A long code would push a PDF table off the A4 page; on the page it stays as it is, for copying."""
    report = sample_report()
    on_paper = {table.key: table for table in report_context(report, on_paper=True)["tables"]}
    on_screen = {table.key: table for table in report_context(report)["tables"]}

    assert on_paper["recruitment_by_month"].rows[0][0] == ("OEI", "text")
    assert on_paper["withdrawals"].rows[0][3] == on_screen["withdrawals"].rows[0][3] == ("9.5", "float")
    assert on_screen["flow"].rows[0][0] == ("enrolment", "text")
    with_dots = report_context(replace(report, tables=[code_table()]), on_paper=True)["tables"][0]
    assert with_dots.rows[0][0] == ("excluded.\u200bnot_\u200beligible", "text")
    assert report_context(replace(report, tables=[code_table()]))["tables"][0].rows[0][0] == (
        "excluded.not_eligible",
        "text",
    )


def code_table():
    from reports.tables import Column, Table

    return Table(key="codes", title="Codes", columns=[Column("box", "Box")], rows=[("excluded.not_eligible",)])
