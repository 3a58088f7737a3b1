"""What a report is made of, whatever it is rendered as.

`reports.figures.build_report` computes a `Report`; the page, the PDF, the Excel workbook and the CSV zip render the
same object, so that the four can never disagree. Every number of the report is in one of its `tables` (the flow
diagram, the progression criteria and the blinding index too): Excel writes one sheet per table, CSV one file per
table. `flow`, `progression`, `blinding` and `recruitment` carry the same numbers again in the shape the page
draws (the SVG flow diagram, the traffic lights, the chart).

Values in rows are Python values (int, float, Decimal, date, str, None), never formatted strings: Excel gets real
numbers and dates, and each renderer formats for its language.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.utils.functional import Promise

Label = str | Promise
Value = int | float | Decimal | date | str | None


@dataclass(frozen=True)
class Column:
    key: str  # a machine name: CSV header, stable across languages
    label: Label  # the heading shown, translated
    # "text", "int", "float" (shown with one decimal), "percent" (a share 0..1, shown as %), "date", "month"
    # (a date on the first of its month)
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    key: str  # file and sheet name, lowercase ASCII: "flow", "recruitment_by_month"
    title: Label
    columns: list[Column]
    rows: list[tuple[Value, ...]]
    note: Label = ""


@dataclass(frozen=True)
class ReportFilters:
    """What the report covers. `site_ids` None is the whole trial; `start`/`end` bound the referral dates of the
    families counted and the months shown (None: from the first / up to today)."""

    site_ids: frozenset[int] | None
    start: date | None
    end: date | None


@dataclass(frozen=True)
class Reason:
    label: Label
    n: int


@dataclass(frozen=True)
class Box:
    """A box of the CONSORT flow diagram: a count and, for exclusions and losses, its reasons."""

    label: Label
    n: int
    reasons: list[Reason] = field(default_factory=list)


@dataclass(frozen=True)
class ArmFlow:
    arm: str  # "intervention" / "control"
    label: Label
    allocated: Box
    received: Box  # received the allocated intervention (a Family Partner and at least one contact)
    not_received: Box  # with reasons
    follow_ups: list[Box]  # one per time point (baseline first), "assessed at N months"
    lost: Box  # lost to follow-up, with reasons
    withdrawn: Box  # withdrawn, with reasons
    analysed: Box  # intention to treat: every randomised family of the arm


@dataclass(frozen=True)
class Check:
    """An arithmetic check of the diagram (the boxes add up); a failed check is shown on the report."""

    label: Label
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Flow:
    assessed: Box  # assessed for eligibility
    excluded: Box  # with reasons: not meeting criteria, declined, other
    randomised: Box
    arms: list[ArmFlow]
    checks: list[Check]


@dataclass(frozen=True)
class Criterion:
    """A progression criterion against thresholds set in advance (trial settings)."""

    key: str  # "recruitment", "consent", "retention", "adherence"
    label: Label
    numerator: int
    denominator: int
    value: float | None  # numerator / denominator, None when the denominator is 0
    low: float | None  # 95 % Wilson interval
    high: float | None
    green: float  # thresholds as shares 0..1
    amber: float
    colour: str  # "green", "amber", "red", or "" when there is nothing to judge yet


@dataclass(frozen=True)
class BlindingIndex:
    """Bang's blinding index for one arm: -1..1, 0 is random guessing; with its 95 % confidence interval."""

    arm: str
    label: Label
    guesses: int
    index: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ThresholdChange:
    """A progression threshold changed after the first randomisation (shown on the report, with its reason)."""

    field: str
    label: Label
    old: object
    new: object
    changed_at: datetime
    changed_by: str
    reason: str


@dataclass(frozen=True)
class MonthCount:
    site_code: str
    month: date  # first of the month
    randomised: int
    target: float  # families per month the site needs to reach its expected recruitment


@dataclass(frozen=True)
class Report:
    filters: ReportFilters
    generated_at: datetime
    site_names: list[str]  # the sites covered, for the heading
    flow: Flow
    progression: list[Criterion]
    blinding: list[BlindingIndex]
    recruitment: list[MonthCount]
    threshold_changes: list[ThresholdChange]
    tables: list[Table]
