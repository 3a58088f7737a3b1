"""What the page and the PDF show of a report, formatted in the active language: both templates include
`reports/report_body.html` with this context, so that the PDF is the page on paper."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from reports.render import svg
from reports.render.values import NOTHING, day, number, percent, shown
from reports.tables import Check, Column, Criterion, Report, Table, ThresholdChange, Value

# A criterion's colour as Bootstrap's badge colour (always beside its word: never colour alone).
BADGES = {"green": "success", "amber": "warning", "red": "danger"}


@dataclass(frozen=True)
class CriterionView:
    key: str
    label: str
    colour: str  # "green", "amber", "red" or "" (nothing to judge yet)
    colour_label: str
    badge: str  # Bootstrap's colour name
    value: str
    fraction: str  # "38 / 45"
    interval: str  # "71.4%-92.3%" with an en dash
    threshold: str  # "green from 80.0%, amber from 60.0%"


@dataclass(frozen=True)
class ChangeView:
    label: str
    old: str
    new: str
    changed_at: str
    changed_by: str
    reason: str


@dataclass(frozen=True)
class TableView:
    key: str
    title: str
    note: str
    headings: list[tuple[str, str]]  # label, kind
    rows: list[list[tuple[str, str]]]  # text, kind


def colour_label(colour: str) -> str:
    words = {"green": _("Green"), "amber": _("Amber"), "red": _("Red")}
    return words.get(colour, _("Not judged yet"))


def _criterion(criterion: Criterion) -> CriterionView:
    return CriterionView(
        key=criterion.key,
        label=str(criterion.label),
        colour=criterion.colour,
        colour_label=colour_label(criterion.colour),
        badge=BADGES.get(criterion.colour, "secondary"),
        value=percent(criterion.value),
        fraction=f"{number(criterion.numerator)} / {number(criterion.denominator)}",
        interval=NOTHING
        if criterion.low is None or criterion.high is None
        else f"{percent(criterion.low)}\u2013{percent(criterion.high)}",
        threshold=_("green from %(green)s, amber from %(amber)s")
        % {"green": percent(criterion.green), "amber": percent(criterion.amber)},
    )


def _threshold_value(value: object) -> str:
    """A progression threshold as the trial settings keep it: whole per cent (75 is 75 %)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return percent(float(value) / 100)
    return shown(value)


def _change(change: ThresholdChange) -> ChangeView:
    return ChangeView(
        label=str(change.label),
        old=_threshold_value(change.old),
        new=_threshold_value(change.new),
        changed_at=day(change.changed_at),
        changed_by=change.changed_by,
        reason=change.reason,
    )


def period(report: Report) -> str:
    start, end = report.filters.start, report.filters.end
    if start and end:
        return _("between %(start)s and %(end)s") % {"start": day(start), "end": day(end)}
    if start:
        return _("from %(start)s") % {"start": day(start)}
    if end:
        return _("up to %(end)s") % {"end": day(end)}
    return _("at any time")


def _cell_text(value: Value, column: Column, on_paper: bool) -> str:
    text = shown(value, column.kind)
    return text.translate(BREAK_AFTER) if on_paper and column.kind == "text" else text


def _cells(row: tuple, table: Table) -> list[tuple[Value, Column]]:
    return list(zip(row, table.columns, strict=False))


# Where a long code ("excluded.not_eligible.harmful_circumstances") may break on paper: after its dots and
# underscores, with a zero-width space, so that WeasyPrint's columns keep whole words and the table stays on the page.
BREAK_AFTER = str.maketrans({".": ".\u200b", "_": "_\u200b"})


def report_context(report: Report, *, on_paper: bool = False) -> dict:
    checks: list[Check] = report.flow.checks
    return {
        "report": report,
        "sites": ", ".join(report.site_names),
        "period": period(report),
        "generated_at": day(report.generated_at),
        "flow_svg": svg.flow_diagram(report.flow),
        "chart_svg": svg.recruitment_chart(report.recruitment),
        "failed_checks": [check for check in checks if not check.passed],
        "passed_checks": [check for check in checks if check.passed],
        "criteria": [_criterion(criterion) for criterion in report.progression],
        "changes": [_change(change) for change in report.threshold_changes],
        "tables": [
            TableView(
                key=table.key,
                title=str(table.title),
                note=str(table.note),
                headings=[(str(column.label), column.kind) for column in table.columns],
                rows=[
                    [(_cell_text(value, column, on_paper), column.kind) for value, column in _cells(row, table)]
                    for row in table.rows
                ],
            )
            for table in report.tables
        ],
    }
