"""The report as a PDF (WeasyPrint, A4): the page's own content (reports/report_body.html, with the SVG flow
diagram and chart) in a print template, styled by static/css/report-print.css.

WeasyPrint fetches nothing: the stylesheet is read here and passed as text, the drawings are inline SVG, and
every URL the document might name is refused (a reason someone typed cannot make the server fetch a URL)."""

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from weasyprint import CSS, HTML  # type: ignore[import-untyped]

from reports.render.html import report_context
from reports.tables import Report

CONTENT_TYPE = "application/pdf"
STYLESHEET = "css/report-print.css"


class NothingFetched(Exception):
    pass


def _fetch_nothing(url: str, *args, **kwargs):
    raise NothingFetched(url)


def _stylesheet() -> str:
    path = finders.find(STYLESHEET)
    if not path or isinstance(path, list):
        raise FileNotFoundError(STYLESHEET)
    with open(path, encoding="utf-8") as stylesheet:
        return stylesheet.read()


def render_pdf(report: Report) -> bytes:
    html = render_to_string("reports/report_print.html", report_context(report, on_paper=True))
    document = HTML(string=html, url_fetcher=_fetch_nothing)
    pdf = document.write_pdf(stylesheets=[CSS(string=_stylesheet(), url_fetcher=_fetch_nothing)])
    if not pdf:
        raise ValueError("WeasyPrint made no PDF")
    return pdf
