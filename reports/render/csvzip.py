"""The report as a zip of CSV files, one per table of the report (`<key>.csv`), UTF-8, comma-separated.

CSV is for scripts (R, Stata, pandas): the header row is the columns' keys, which stay the same in both
languages (docs/decisions.md); numbers are written with a decimal point, shares as 0..1, dates as yyyy-mm-dd, an
empty cell for no value. Text (labels of reasons, sites' names) is in the chosen language. Every cell goes through
reports.cells.safe_cell, since spreadsheet programs open CSV files too."""

import csv
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from reports.cells import safe_cell
from reports.tables import Report, Table, Value

CONTENT_TYPE = "application/zip"


def _text(value: Value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat(timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int | float):
        return value
    return safe_cell(str(value))


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(column.key) for column in table.columns])
    for row in table.rows:
        writer.writerow([_text(value) for value in row])
    return out.getvalue()


def render_csv_zip(report: Report) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        names: set[str] = set()
        for table in report.tables:
            name, number = f"{table.key}.csv", 2
            while name in names:
                name, number = f"{table.key}_{number}.csv", number + 1
            names.add(name)
            archive.writestr(name, table_csv(table).encode("utf-8"))
    return buffer.getvalue()
