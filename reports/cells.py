"""One rule for every cell a spreadsheet program may open (CSV, Excel): text that would start a formula is made
inert. OWASP's advice for CSV injection: a cell starting with = + - @, a tab or a carriage return gets a leading
apostrophe, so that Excel, LibreOffice and Google Sheets show it as text. Numbers and dates are never touched
(a negative number is a number, not a formula)."""

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """`value` as it may be written to a spreadsheet cell."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """csv.writer's file: its write hands each line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def streaming_csv_writer():
    """A csv.writer whose writerow returns the row's line, for a StreamingHttpResponse (the datasets, the audit
    log): one line or chunk in memory at a time."""
    return csv.writer(_Echo())
