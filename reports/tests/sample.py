"""A hand-built, realistic feasibility report: every field filled, two arms, three sites, one failed check.

The renderers are tested against it, so that their tests say exactly which numbers must appear whatever the
figures compute; the labels are English strings (the figures give translated ones)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from reports.tables import (
    ArmFlow,
    BlindingIndex,
    Box,
    Check,
    Column,
    Criterion,
    Flow,
    MonthCount,
    Reason,
    Report,
    ReportFilters,
    Table,
    ThresholdChange,
)

OSLO = ZoneInfo("Europe/Oslo")
MONTHS = [date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)]
# A label a spreadsheet would take for a formula, as a reason someone typed could be.
FORMULA_LABEL = '=HYPERLINK("http://evil.example","click")'


def _arm(arm: str, label: str, allocated: int, received: int, follow_ups: list[int], lost: int, withdrawn: int):
    not_received = allocated - received
    reasons = [Reason("No Family Partner free yet", not_received)] if not_received else []
    return ArmFlow(
        arm=arm,
        label=label,
        allocated=Box(f"Allocated to {label.lower()}", allocated),
        received=Box("Received the allocated intervention", received),
        not_received=Box("Did not receive the allocated intervention", not_received, reasons),
        follow_ups=[
            Box(label_, n)
            for label_, n in zip(
                ["Assessed at baseline", "Assessed at 3 months", "Assessed at 6 months"], follow_ups, strict=True
            )
        ],
        lost=Box("Lost to follow-up", lost, [Reason("Moved away", lost)] if lost else []),
        withdrawn=Box("Withdrawn", withdrawn, [Reason("Did not want to continue", withdrawn)] if withdrawn else []),
        analysed=Box("Analysed (intention to treat)", allocated),
    )


def sample_report(*, site_ids: frozenset[int] | None = None) -> Report:
    filters = ReportFilters(site_ids=site_ids, start=date(2026, 6, 1), end=date(2026, 10, 31))
    flow = Flow(
        assessed=Box("Assessed for eligibility", 61),
        excluded=Box(
            "Excluded",
            23,
            [Reason("Not meeting the criteria", 14), Reason("Declined to take part", 6), Reason("Other reasons", 3)],
        ),
        randomised=Box("Randomised", 38),
        arms=[
            _arm("intervention", "Family Partner intervention", 19, 17, [19, 15, 9], 1, 2),
            _arm("control", "Usual child welfare services", 19, 19, [19, 16, 10], 2, 1),
        ],
        checks=[
            Check("Assessed = excluded + randomised", True, "61 = 23 + 38"),
            Check("Allocated to the arms = randomised", True, "19 + 19 = 38"),
            Check("Excluded = the sum of its reasons", False, "23 ≠ 14 + 6 + 2"),
        ],
    )
    progression = [
        Criterion("recruitment", "Recruitment rate", 38, 45, 38 / 45, 0.7136, 0.9225, 0.8, 0.6, "green"),
        Criterion("consent", "Consent rate", 38, 44, 38 / 44, 0.7333, 0.9363, 0.9, 0.7, "amber"),
        Criterion("retention", "Retention at 12 months", 3, 8, 3 / 8, 0.1368, 0.6943, 0.8, 0.65, "red"),
        Criterion("adherence", "Adherence (weeks on target)", 0, 0, None, None, None, 0.75, 0.5, ""),
    ]
    blinding = [
        BlindingIndex("intervention", "Family Partner intervention", 15, 0.2, -0.08, 0.48),
        BlindingIndex("control", "Usual child welfare services", 16, -0.0625, -0.33, 0.21),
    ]
    targets = {"OEI": 1.5, "LAR": 1.25, "LIL": 1.0}
    per_month = {"OEI": [2, 3, 1, 4, 2], "LAR": [1, 2, 2, 3, 1], "LIL": [0, 1, 4, 2, 10]}
    recruitment = [
        MonthCount(site, month, per_month[site][i], targets[site])
        for i, month in enumerate(MONTHS)
        for site in ("OEI", "LAR", "LIL")
    ]
    tables = [
        Table(
            key="flow",
            title="Flow of families (CONSORT)",
            columns=[
                Column("stage", "Stage"),
                Column("arm", "Arm"),
                Column("box", "Box"),
                Column("n", "Families", "int"),
            ],
            rows=[
                ("enrolment", "", "Assessed for eligibility", 61),
                ("enrolment", "", "Excluded", 23),
                ("enrolment", "", FORMULA_LABEL, 2),
                ("allocation", "Family Partner intervention", "Allocated", 19),
                ("allocation", "Usual child welfare services", "Allocated", 19),
            ],
            note="Families referred between the dates chosen.",
        ),
        Table(
            key="recruitment_by_month",
            title="Recruitment per site per month",
            columns=[
                Column("site", "Site"),
                Column("month", "Month", "month"),
                Column("randomised", "Randomised", "int"),
                Column("target", "Target", "float"),
                Column("share", "Share of target", "percent"),
            ],
            rows=[(m.site_code, m.month, m.randomised, m.target, m.randomised / m.target) for m in recruitment],
        ),
        Table(
            key="withdrawals",
            title="Withdrawals",
            columns=[
                Column("study_id", "Family"),
                Column("withdrawn_on", "Withdrawn on", "date"),
                Column("reason", "Reason"),
                Column("weeks", "Weeks in the trial", "float"),
            ],
            rows=[
                ("OEI-004", date(2026, 8, 14), "Did not want to continue", Decimal("9.5")),
                ("LAR-011", date(2026, 9, 30), "Moved to Ålesund", 4.25),
                ("LIL-002", None, "-2 reasons", None),
            ],
        ),
    ]
    return Report(
        filters=filters,
        generated_at=datetime(2026, 11, 30, 9, 15, tzinfo=OSLO),
        site_names=["Øvre Eiker", "Larvik", "Lillehammer"],
        flow=flow,
        progression=progression,
        blinding=blinding,
        recruitment=recruitment,
        threshold_changes=[
            ThresholdChange(
                "consent_green",
                "Consent rate, green from",
                85,
                90,
                datetime(2026, 7, 2, 13, 40, tzinfo=OSLO),
                "Dina Data",
                "The steering group asked for the protocol's value",
            )
        ],
        tables=tables,
    )
