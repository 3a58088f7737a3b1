"""The analysis datasets as files: CSV (streamed; raw codes or labels), Excel (a sheet per dataset and the
codebook), Stata .dta and SPSS .sav (integer codes with value labels, through pyreadstat).

Every text cell of a CSV or Excel file goes through `reports.cells.safe_cell`. Stata and SPSS files keep text as it
is: neither program evaluates a cell as a formula.
"""

import io
import os
import tempfile
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pyreadstat
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from reports.cells import safe_cell, streaming_csv_writer
from reports.datasets import CODE, DATE, FLAG, FLOAT, INT, KIND_LABELS, Cell, Dataset, Variable

CSV, XLSX, DTA, SAV = "csv", "xlsx", "dta", "sav"
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DTA: "application/x-stata-dta",
    SAV: "application/x-spss-sav",
}
DATE_FORMAT = "yyyy-mm-dd"
STATA_LABEL_LENGTH = 80  # Stata's limit for a variable's label


def _labeller(variable: Variable, labels: bool):
    """A cell's value as the file shows it: the code, or (labels) the code's label in the active language."""
    if not (labels and variable.coded):
        return lambda value: value
    names = {code: str(label) for code, label in variable.values}
    return lambda value: None if value is None else names.get(value, value)


# --- CSV -----------------------------------------------------------------------------------------------------


def csv_lines(dataset: Dataset, *, labels: bool) -> Iterator[str]:
    """The dataset as CSV text, one piece per chunk of families (a UTF-8 byte-order mark first, so that Excel
    reads the Norwegian letters). Meant for a StreamingHttpResponse: one chunk of rows is in memory at a time."""
    writer = streaming_csv_writer()
    yield "\ufeff" + writer.writerow([variable.name for variable in dataset.variables])
    cells = [_labeller(variable, labels) for variable in dataset.variables]
    for rows in dataset.chunks():
        yield "".join(
            writer.writerow([safe_cell(cell(value)) for cell, value in zip(cells, row, strict=True)]) for row in rows
        )


def codebook_rows(datasets: list[Dataset]) -> list[tuple[str, str, str, str, str]]:
    """(dataset, variable, label, type, allowed values with their labels) for every variable."""
    return [
        (
            dataset.key,
            variable.name,
            str(variable.label),
            str(KIND_LABELS[variable.kind]),
            "; ".join(f"{code} = {label}" for code, label in variable.values),
        )
        for dataset in datasets
        for variable in dataset.variables
    ]


# --- Excel ---------------------------------------------------------------------------------------------------


def excel_workbook(datasets: list[Dataset], *, labels: bool, note: str) -> bytes:
    """A sheet per dataset (header frozen, dates as dates) and the codebook, with `note` above it."""
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    for dataset in datasets:
        sheet = workbook.create_sheet(dataset.key)
        sheet.freeze_panes = "A2"
        sheet.append([_header(sheet, variable.name, bold) for variable in dataset.variables])
        cells = [_labeller(variable, labels) for variable in dataset.variables]
        for rows in dataset.chunks():
            for row in rows:
                sheet.append([_excel_cell(sheet, cell(value)) for cell, value in zip(cells, row, strict=True)])
    sheet = workbook.create_sheet("codebook")
    sheet.freeze_panes = "A3"
    sheet.append([safe_cell(note)])
    sheet.append(
        [_header(sheet, title, bold) for title in (_("dataset"), _("variable"), _("label"), _("type"), _("values"))]
    )
    for row in codebook_rows(datasets):
        sheet.append([safe_cell(value) for value in row])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _header(sheet, text: str, font: Font) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=safe_cell(text))
    cell.font = font
    return cell


def _excel_cell(sheet, value: Cell):
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_FORMAT
        return cell
    return safe_cell(value)


# --- Stata and SPSS ------------------------------------------------------------------------------------------


def _integer_codes(variable: Variable) -> dict:
    """A coded variable's codes as the integers Stata and SPSS store: 0/1 stay themselves, codes number 1, 2, ... in
    the order the codebook lists them."""
    if variable.kind == FLAG:
        return {code: code for code, _label in variable.values}
    return {code: index for index, (code, _label) in enumerate(variable.values, start=1)}


def statistical_file(dataset: Dataset, file_format: str, *, note: str) -> bytes:
    """The dataset as a Stata (.dta) or SPSS (.sav) file with variable labels and value labels."""
    columns: dict[str, list] = {variable.name: [] for variable in dataset.variables}
    for rows in dataset.chunks():
        for row in rows:
            for variable, value in zip(dataset.variables, row, strict=True):
                columns[variable.name].append(value)
    frame = {}
    value_labels = {}
    empty_dates: list[str] = []
    for variable in dataset.variables:
        values = columns[variable.name]
        if variable.coded:
            codes = _integer_codes(variable)
            frame[variable.name] = pd.array([codes.get(value) for value in values], dtype="Int64")
            value_labels[variable.name] = {codes[code]: str(label) for code, label in variable.values}
        elif variable.kind == INT:
            frame[variable.name] = pd.array(values, dtype="Int64")
        elif variable.kind == FLOAT:
            frame[variable.name] = pd.array(values, dtype="Float64").astype("float64")
        elif variable.kind == DATE:
            frame[variable.name] = pd.Series(values, dtype="object")
            if all(value is None for value in values):
                # pyreadstat takes an empty column of dates for text: a numeric column with the date format instead
                frame[variable.name] = pd.Series([float("nan")] * len(values), dtype="float64")
                empty_dates.append(variable.name)
        else:
            frame[variable.name] = pd.Series(["" if value is None else str(value) for value in values], dtype="object")
    data = pd.DataFrame(frame, columns=[variable.name for variable in dataset.variables])
    labels: dict[str, str | None] = {
        variable.name: str(variable.label)[:STATA_LABEL_LENGTH] for variable in dataset.variables
    }
    handle, path = tempfile.mkstemp(suffix=f".{file_format}")
    os.close(handle)
    try:
        if file_format == DTA:
            pyreadstat.write_dta(
                data,
                path,
                file_label=note[:STATA_LABEL_LENGTH],
                column_labels=labels,
                variable_value_labels=value_labels,
                variable_format=dict.fromkeys(empty_dates, "%td"),
                version=15,
            )
        else:
            pyreadstat.write_sav(
                data,
                path,
                file_label=note,
                column_labels=labels,
                variable_value_labels=value_labels,
                variable_format=dict.fromkeys(empty_dates, "DATE11"),
            )
        with open(path, "rb") as written:
            content = written.read()
        # ReadStat reports no error when a write fails on a full disk: it leaves the file empty.
        if not content:
            raise OSError(f"the {file_format} file was written empty (is the disk full?)")
        return content
    finally:
        os.unlink(path)


__all__ = ["CODE", "CONTENT_TYPES", "CSV", "DTA", "SAV", "XLSX", "codebook_rows", "csv_lines", "excel_workbook"]
