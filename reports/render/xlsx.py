"""The report as an Excel workbook (openpyxl): one sheet per table of the report, its header row bold and frozen,
numbers as numbers and dates as dates with number formats, every cell through reports.cells.safe_cell.

Write-only mode streams rows to the file instead of keeping every cell as an object: the tables of a national
trial stay small, but the rows of a site-month table grow with the months."""

from datetime import date, datetime
from decimal import Decimal
from io import BytesIO

from django.utils import timezone
from django.utils.translation import get_language
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from reports.cells import safe_cell
from reports.render.html import period
from reports.tables import Column, Report, Table, Value

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOLD = Font(bold=True)
SHEET_NAME_LENGTH = 31  # Excel's limit
WIDEST = 60


def _date_format() -> str:
    return "dd.mm.yyyy" if get_language() == "nb" else "yyyy-mm-dd"


def _number_format(kind: str) -> str | None:
    return {
        "int": "0",
        "float": "0.0",
        "percent": "0.0%",
        "date": _date_format(),
        "month": "mm.yyyy" if get_language() == "nb" else "yyyy-mm",
    }.get(kind)


def _value(value: Value) -> Value:
    if isinstance(value, datetime):
        # Excel has no time zones: the local time the page shows.
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, Decimal):
        return float(value)
    return safe_cell(value)


def _width(text: str) -> float:
    return min(len(text) + 2, WIDEST)


def _widths(table: Table) -> list[float]:
    widths = [_width(str(column.label)) for column in table.columns]
    for row in table.rows:
        for index, value in enumerate(row[: len(widths)]):
            shown = value.isoformat() if isinstance(value, date) else str(value if value is not None else "")
            widths[index] = max(widths[index], _width(shown))
    return [max(width, 8) for width in widths]


def _sheet_name(key: str, used: set[str]) -> str:
    name = "".join(c for c in key if c not in "[]:*?/\\")[:SHEET_NAME_LENGTH] or "table"
    candidate, number = name, 2
    while candidate.lower() in used:
        suffix = f"_{number}"
        candidate, number = name[: SHEET_NAME_LENGTH - len(suffix)] + suffix, number + 1
    used.add(candidate.lower())
    return candidate


def _cell(sheet, value: Value, column: Column) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=_value(value))
    number_format = _number_format(column.kind)
    if number_format and isinstance(value, int | float | Decimal | date) and not isinstance(value, bool):
        cell.number_format = number_format
    return cell


def render_xlsx(report: Report) -> bytes:
    workbook = Workbook(write_only=True)
    workbook.properties.title = safe_cell(", ".join(report.site_names))
    workbook.properties.subject = safe_cell(period(report))
    used: set[str] = set()
    for table in report.tables:
        sheet = workbook.create_sheet(title=_sheet_name(table.key, used))
        sheet.freeze_panes = "A2"
        for index, width in enumerate(_widths(table), start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        header = []
        for column in table.columns:
            cell = WriteOnlyCell(sheet, value=safe_cell(str(column.label)))
            cell.font = BOLD
            header.append(cell)
        sheet.append(header)
        for row in table.rows:
            sheet.append([_cell(sheet, value, column) for value, column in zip(row, table.columns, strict=False)])
    if not report.tables:
        workbook.create_sheet(title="report")
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
