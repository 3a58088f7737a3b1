"""The numbers of the feasibility report (CONSORT 2010 extension for pilot trials, Eldridge et al. 2016).

`build_report(filters)` computes a `reports.tables.Report`: the flow diagram by arm with its arithmetic checks,
recruitment per site and month against the target, eligibility and consent, retention and window compliance,
adherence, contacts, caseload, withdrawals, the blinding index and the progression criteria.

The cohort is the families of the chosen sites whose referral date lies in [start, end]; what happened to them is
counted as it is recorded now. Every count is set-based: a fixed number of queries, whatever the number of
families (a test holds that), each grouping in the database and handing back a few rows of counts. Choices and
assumptions are listed in docs/decisions.md ("Issue 11: the report's figures").
"""

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import JSONObject, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from families.models import (
    Consent,
    ConsentDecision,
    DeclineReason,
    Family,
    FamilyStatus,
    Screening,
    WithdrawalReason,
)
from families.models import (
    Criterion as EligibilityCriterion,
)
from followups.models import ArmGuess, Assessment, AssessmentStatus, BlindingGuess, LostReason, StopReason
from randomization.models import Allocation, Arm
from reports import stats
from reports.tables import (
    ArmFlow,
    BlindingIndex,
    Box,
    Check,
    Column,
    Criterion,
    Flow,
    Label,
    MonthCount,
    Reason,
    Report,
    ReportFilters,
    Table,
    ThresholdChange,
)
from reports.tables import (
    Value as CellValue,
)
from trial.dates import add_months, today
from trial.models import RecruitmentState, Site, TrialSettings
from trial.roles import display_name
from visits import selectors as visit_selectors
from visits.models import Assignment, Contact, ContactKind, Element, InterventionPeriod, PartnerProfile

Row = tuple[CellValue, ...]
ARMS = (Arm.INTERVENTION, Arm.CONTROL)
PROGRESSION = ("recruitment", "consent", "retention", "adherence")
DAYS_PER_MONTH = 365.25 / 12


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _month(day: date) -> date:
    return day.replace(day=1)


def _months(first: date, last: date) -> list[date]:
    months, month = [], _month(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


# --- The cohort and its facts, grouped ---------------------------------------------------------------------


def cohort(filters: ReportFilters) -> QuerySet[Family]:
    """The families the report counts: of the chosen sites, referred within [start, end]."""
    families = Family.objects.all()
    if filters.site_ids is not None:
        families = families.filter(site_id__in=filters.site_ids)
    if filters.start is not None:
        families = families.filter(referral_date__gte=filters.start)
    if filters.end is not None:
        families = families.filter(referral_date__lte=filters.end)
    return families


@dataclass(frozen=True)
class FamilyKind:
    """One group of the cohort: the families that share every fact the flow and its tables tell apart."""

    screened: bool
    eligible: bool | None  # the latest screening's answer
    failed: tuple[str, ...]  # its failed criteria
    decision: str | None  # the latest consent decision
    decline_reason: str | None
    arm: str | None
    status: str
    assigned: bool
    contacted: bool  # at least one contact that is not voided
    withdrawal: str | None  # its reason
    lost: str | None  # its reason
    n: int


def family_kinds(families: QuerySet[Family]) -> list[FamilyKind]:
    """The cohort grouped by every fact of the flow: one query, a few dozen rows, however many families."""
    latest_screening = Screening.objects.filter(family=OuterRef("pk")).order_by("-recorded_at", "-pk")
    latest_consent = Consent.objects.filter(family=OuterRef("pk")).order_by("-recorded_at", "-pk")
    # The latest screening's two facts, and the latest consent's, each from one lookup per family (a JSON pair).
    rows = (
        families.order_by()
        .annotate(
            screening_fact=Subquery(
                latest_screening.values(fact=JSONObject(eligible="eligible", failed="failed_criteria"))[:1]
            ),
            consent_fact=Subquery(
                latest_consent.values(fact=JSONObject(decision="decision", reason="decline_reason"))[:1]
            ),
            arm=F("allocation__arm"),
            assigned=Exists(Assignment.objects.filter(family=OuterRef("pk"))),
            contacted=Exists(Contact.objects.filter(family=OuterRef("pk"), voided_at__isnull=True)),
            withdrawal_reason=F("withdrawal__reason"),
            lost_reason=F("lost_to_follow_up__reason"),
        )
        .values(
            "screening_fact",
            "consent_fact",
            "arm",
            "status",
            "assigned",
            "contacted",
            "withdrawal_reason",
            "lost_reason",
        )
        .annotate(n=Count("pk"))
    )
    kinds = []
    for row in rows:
        screening, consent = _fact(row["screening_fact"]), _fact(row["consent_fact"])
        kinds.append(
            FamilyKind(
                screened=screening is not None,
                eligible=screening["eligible"] if screening else None,
                failed=tuple(screening["failed"] or ()) if screening else (),
                decision=consent["decision"] if consent else None,
                decline_reason=(consent["reason"] or None) if consent else None,
                arm=row["arm"],
                status=row["status"],
                assigned=row["assigned"],
                contacted=row["contacted"],
                withdrawal=row["withdrawal_reason"],
                lost=row["lost_reason"],
                n=row["n"],
            )
        )
    return kinds


def _fact(value: object) -> dict | None:
    """A JSON object from a subquery: psycopg2 decodes jsonb, but a subquery's result may arrive as text."""
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[call-overload]


# The branches of the flow before randomisation, in the order a family is sorted into them.
NOT_ELIGIBLE = "not_eligible"
DECLINED = "declined"
OTHER = "other"
RANDOMISED = "randomised"
OTHER_WITHDRAWN = "withdrawn_before_randomisation"
OTHER_CONSENTED = "consented_not_randomised"
OTHER_AWAITING = "awaiting_consent"


def branch(kind: FamilyKind) -> str | None:
    """Where a screened family sits before randomisation; None for a family never screened (not in the flow,
    unless randomised: then a check fails)."""
    if kind.arm is not None:
        return RANDOMISED
    if not kind.screened:
        return None
    if not kind.eligible:
        return NOT_ELIGIBLE
    if kind.decision == ConsentDecision.DECLINED:
        return DECLINED
    return OTHER


def other_reason(kind: FamilyKind) -> str:
    if kind.withdrawal is not None:
        return OTHER_WITHDRAWN
    if kind.decision == ConsentDecision.CONSENTED:
        return OTHER_CONSENTED
    return OTHER_AWAITING


OTHER_LABELS = {
    OTHER_AWAITING: _("Awaiting a consent decision"),
    OTHER_CONSENTED: _("Consented, not yet randomised"),
    OTHER_WITHDRAWN: _("Withdrawn before randomisation"),
}

# Why a family of the intervention arm has not received it (yet).
NOT_RECEIVED_WAITING = "waiting_for_partner"
NOT_RECEIVED_LEFT = "left_before_partner"
NOT_RECEIVED_NO_CONTACT = "assigned_no_contact"
NOT_RECEIVED_LABELS = {
    NOT_RECEIVED_WAITING: _("Waiting for a Family Partner"),
    NOT_RECEIVED_LEFT: _("Withdrawn or lost before a Family Partner was assigned"),
    NOT_RECEIVED_NO_CONTACT: _("Assigned a Family Partner, no contact yet"),
}


def not_received_reason(kind: FamilyKind) -> str:
    if kind.assigned:
        return NOT_RECEIVED_NO_CONTACT
    if kind.withdrawal is not None or kind.lost is not None:
        return NOT_RECEIVED_LEFT
    return NOT_RECEIVED_WAITING


# --- Assessments per time point ----------------------------------------------------------------------------

# What became of an assessment, for the flow's reasons (the recorded statuses, then the scheduled ones by window).
OUTCOME_NOT_YET_OPEN = "not_yet_open"
OUTCOME_OPEN = "window_open"
OUTCOME_OVERDUE = "overdue"
OUTCOME_NONE = "not_scheduled"
OUTCOME_LABELS = {
    AssessmentStatus.MISSED.value: _("Missed"),
    AssessmentStatus.REFUSED.value: _("Refused"),
    f"stopped_{StopReason.WITHDRAWAL}": _("Stopped: withdrawn"),
    f"stopped_{StopReason.LOST}": _("Stopped: lost to follow-up"),
    f"stopped_{StopReason.SCHEDULE_CHANGED}": _("Stopped: time point removed from the schedule"),
    OUTCOME_OVERDUE: _("Window closed, nothing recorded"),
    OUTCOME_OPEN: _("Window open, not yet done"),
    OUTCOME_NOT_YET_OPEN: _("Not yet due"),
    OUTCOME_NONE: _("No assessment scheduled"),
}
ASSESSED = (AssessmentStatus.COMPLETED.value, AssessmentStatus.PARTLY.value)


@dataclass(frozen=True)
class AssessmentKind:
    arm: str
    months: int
    outcome: str  # "completed", "partly", "missed", "refused", "stopped_<reason>", or a scheduled one's window
    due: bool  # recorded, or its window has closed
    outside_window: bool
    n: int


def assessment_kinds(families: QuerySet[Family], on: date) -> list[AssessmentKind]:
    """The randomised families' assessments grouped by arm, time point, outcome and window: one query."""
    rows = (
        Assessment.objects.filter(family__in=families.filter(allocation__isnull=False).values("pk"))
        .order_by()
        .annotate(
            arm=F("family__allocation__arm"),
            window_closed=Case(
                When(closes_on__lt=on, then=Value(True)), default=Value(False), output_field=BooleanField()
            ),
            window_opened=Case(
                When(opens_on__lte=on, then=Value(True)), default=Value(False), output_field=BooleanField()
            ),
        )
        .values("arm", "months", "status", "stop_reason", "outside_window", "window_closed", "window_opened")
        .annotate(n=Count("pk"))
    )
    kinds = []
    for row in rows:
        status = row["status"]
        if status == AssessmentStatus.STOPPED:
            outcome = f"stopped_{row['stop_reason']}"
        elif status == AssessmentStatus.SCHEDULED:
            outcome = (
                OUTCOME_OVERDUE
                if row["window_closed"]
                else OUTCOME_OPEN
                if row["window_opened"]
                else OUTCOME_NOT_YET_OPEN
            )
        else:
            outcome = status
        recorded = status not in (AssessmentStatus.SCHEDULED, AssessmentStatus.STOPPED)
        kinds.append(
            AssessmentKind(
                arm=row["arm"],
                months=row["months"],
                outcome=outcome,
                due=recorded or row["window_closed"],
                outside_window=row["outside_window"],
                n=row["n"],
            )
        )
    return kinds


def time_point_label(months: int) -> str:
    if months == 0:
        return gettext("Baseline")
    return gettext("%(months)s months") % {"months": months}


# --- The report ------------------------------------------------------------------------------------------


@contextmanager
def report_session() -> Iterator[None]:
    """One transaction for the whole report with the settings of an analytical read on PostgreSQL: no JIT
    compilation (compiling the grouped queries took longer than running them: 0.7 s of 1 s at 12,000 families) and
    room to group family-weeks in memory. Called outside any transaction, every number comes from one snapshot
    (repeatable read, read only); inside a caller's transaction, the caller's isolation holds."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if outermost:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def build_report(filters: ReportFilters, *, now: datetime | None = None) -> Report:
    """The feasibility report for `filters`, as recorded at `now` (default: this moment)."""
    # Before the read-only snapshot: a database without its settings row gets it made here.
    trial_settings = TrialSettings.current()
    with report_session():
        return _build_report(filters, trial_settings, now=now)


def _build_report(filters: ReportFilters, trial_settings: TrialSettings, *, now: datetime | None) -> Report:
    now = now or timezone.now()
    on = today(now)
    sites = list(
        Site.objects.order_by("code")
        if filters.site_ids is None
        else Site.objects.filter(pk__in=filters.site_ids).order_by("code")
    )
    families = cohort(filters)
    kinds = family_kinds(families)
    time_points = [0, *sorted(trial_settings.follow_up_months)]
    a_kinds = assessment_kinds(families, on)

    flow, flow_table, checks_table = _flow(kinds, a_kinds, time_points)
    eligibility_table, consent_table, consent_counts = _eligibility_and_consent(kinds)
    retention_table, retention_counts = _retention(a_kinds, time_points)
    months = _range_months(filters, sites, on)
    recruitment, month_table, site_table = _recruitment(months, sites, trial_settings, on)
    adherence_table, adherence_counts = _adherence(families, trial_settings, on)
    contacts_kind_table, contacts_element_table = _contacts(families)
    caseload_table = _caseload(months, sites, on)
    withdrawals_table = _withdrawals(kinds)
    blinding, blinding_table = _blinding(families)
    progression, progression_table = _progression(
        trial_settings, sites, filters, flow.randomised.n, consent_counts, retention_counts, adherence_counts
    )
    threshold_changes, threshold_table = _threshold_changes()
    return Report(
        filters=filters,
        generated_at=now,
        site_names=[str(site) for site in sites],
        flow=flow,
        progression=progression,
        blinding=blinding,
        recruitment=recruitment,
        threshold_changes=threshold_changes,
        tables=[
            flow_table,
            checks_table,
            month_table,
            site_table,
            eligibility_table,
            consent_table,
            retention_table,
            adherence_table,
            contacts_kind_table,
            contacts_element_table,
            caseload_table,
            withdrawals_table,
            blinding_table,
            progression_table,
            threshold_table,
        ],
    )


def _reasons(counts: Counter, labels: dict) -> list[Reason]:
    """Reasons in the order of `labels` (the choices' order), then any code not known there, by code."""
    reasons = [Reason(label, counts[code]) for code, label in labels.items() if counts.get(code)]
    reasons += [
        Reason(str(code), counts[code]) for code in sorted(counts, key=str) if code not in labels and counts[code]
    ]
    return reasons


def _flow(kinds: list[FamilyKind], a_kinds: list[AssessmentKind], time_points: list[int]) -> tuple[Flow, Table, Table]:
    branches: Counter = Counter()
    failed: Counter = Counter()
    declined: Counter = Counter()
    other: Counter = Counter()
    assessed = 0
    randomised_statuses = 0  # families whose status says randomised (or withdrawn after an allocation)
    allocated: Counter = Counter()
    received: Counter = Counter()
    not_received: dict[str, Counter] = defaultdict(Counter)
    lost: dict[str, Counter] = defaultdict(Counter)
    withdrawn: dict[str, Counter] = defaultdict(Counter)
    for kind in kinds:
        place = branch(kind)
        if kind.screened:
            assessed += kind.n
        if place is not None:
            branches[place] += kind.n
        if place == NOT_ELIGIBLE:
            for code in kind.failed:
                failed[code] += kind.n
        elif place == DECLINED:
            declined[kind.decline_reason or DeclineReason.OTHER.value] += kind.n
        elif place == OTHER:
            other[other_reason(kind)] += kind.n
        if kind.status == FamilyStatus.RANDOMISED or (kind.status == FamilyStatus.WITHDRAWN and kind.arm):
            randomised_statuses += kind.n
        if kind.arm is None:
            continue
        allocated[kind.arm] += kind.n
        if kind.arm == Arm.CONTROL or (kind.assigned and kind.contacted):
            received[kind.arm] += kind.n
        else:
            not_received[kind.arm][not_received_reason(kind)] += kind.n
        if kind.lost is not None:
            lost[kind.arm][kind.lost] += kind.n
        if kind.withdrawal is not None:
            withdrawn[kind.arm][kind.withdrawal] += kind.n

    # Per arm and time point: families assessed, and every other outcome as a reason.
    outcomes: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for a in a_kinds:
        outcomes[(a.arm, a.months)][a.outcome] += a.n

    excluded_reasons = [
        Reason(_("Not meeting inclusion criteria"), branches[NOT_ELIGIBLE]),
        Reason(_("Declined to participate"), branches[DECLINED]),
        Reason(_("Other reasons"), branches[OTHER]),
    ]
    excluded = Box(_("Excluded"), branches[NOT_ELIGIBLE] + branches[DECLINED] + branches[OTHER], excluded_reasons)
    randomised = Box(_("Randomised"), branches[RANDOMISED])
    criteria_labels = {c.value: c.label for c in EligibilityCriterion}
    decline_labels = {c.value: c.label for c in DeclineReason}
    withdrawal_labels = {c.value: c.label for c in WithdrawalReason}
    lost_labels = {c.value: c.label for c in LostReason}

    arms = []
    checks = [
        Check(
            _("Assessed for eligibility = excluded + randomised"),
            assessed == excluded.n + randomised.n,
            f"{assessed} = {excluded.n} + {randomised.n}",
        ),
        Check(
            _("Randomised = allocated to each arm, summed"),
            randomised.n == sum(allocated[arm] for arm in ARMS),
            f"{randomised.n} = " + " + ".join(str(allocated[arm]) for arm in ARMS),
        ),
        Check(
            _("Allocations = families whose status says randomised"),
            randomised.n == randomised_statuses,
            f"{randomised.n} = {randomised_statuses}",
        ),
    ]
    for arm in ARMS:
        arm_not_received = not_received[arm]
        follow_ups = []
        for months in time_points:
            counted = outcomes[(arm, months)]
            done = sum(counted[s] for s in ASSESSED)
            rest = Counter({code: n for code, n in counted.items() if code not in ASSESSED})
            rest[OUTCOME_NONE] = allocated[arm] - sum(counted.values())
            follow_ups.append(
                Box(
                    gettext("Assessed at %(time_point)s") % {"time_point": time_point_label(months)}
                    if months
                    else gettext("Assessed at baseline"),
                    done,
                    _reasons(rest, OUTCOME_LABELS),
                )
            )
            checks.append(
                Check(
                    gettext("%(arm)s, %(time_point)s: assessed + reasons = allocated")
                    % {"arm": Arm(arm).label, "time_point": time_point_label(months)},
                    rest[OUTCOME_NONE] >= 0 and done + sum(rest.values()) == allocated[arm],
                    f"{done} + {sum(rest.values())} = {allocated[arm]}",
                )
            )
        arm_flow = ArmFlow(
            arm=arm,
            label=Arm(arm).label,
            allocated=Box(_("Allocated"), allocated[arm]),
            received=Box(
                _("Received the Family Partner intervention")
                if arm == Arm.INTERVENTION
                else _("Received usual child welfare services"),
                received[arm],
            ),
            not_received=Box(
                _("Did not receive the allocated intervention"),
                sum(arm_not_received.values()),
                _reasons(arm_not_received, NOT_RECEIVED_LABELS),
            ),
            follow_ups=follow_ups,
            lost=Box(_("Lost to follow-up"), sum(lost[arm].values()), _reasons(lost[arm], lost_labels)),
            withdrawn=Box(
                _("Withdrawn after randomisation"),
                sum(withdrawn[arm].values()),
                _reasons(withdrawn[arm], withdrawal_labels),
            ),
            analysed=Box(_("Analysed (intention to treat)"), allocated[arm]),
        )
        arms.append(arm_flow)
        checks += [
            Check(
                gettext("%(arm)s: allocated = received + not received") % {"arm": Arm(arm).label},
                arm_flow.allocated.n == arm_flow.received.n + arm_flow.not_received.n,
                f"{arm_flow.allocated.n} = {arm_flow.received.n} + {arm_flow.not_received.n}",
            ),
            Check(
                gettext("%(arm)s: analysed = allocated") % {"arm": Arm(arm).label},
                arm_flow.analysed.n == arm_flow.allocated.n,
                f"{arm_flow.analysed.n} = {arm_flow.allocated.n}",
            ),
        ]

    assessed_box = Box(_("Assessed for eligibility"), assessed)
    flow = Flow(assessed=assessed_box, excluded=excluded, randomised=randomised, arms=arms, checks=checks)

    rows: list[Row] = [
        ("", "assessed", "", str(assessed_box.label), assessed_box.n),
        ("", "excluded", "", str(excluded.label), excluded.n),
        ("", "excluded.not_eligible", "", str(excluded_reasons[0].label), excluded_reasons[0].n),
    ]
    rows += [
        ("", f"excluded.not_eligible.{code}", "", str(label), n) for code, n, label in _coded(failed, criteria_labels)
    ]
    rows.append(("", "excluded.declined", "", str(excluded_reasons[1].label), excluded_reasons[1].n))
    rows += [
        ("", f"excluded.declined.{code}", "", str(label), n) for code, n, label in _coded(declined, decline_labels)
    ]
    rows.append(("", "excluded.other", "", str(excluded_reasons[2].label), excluded_reasons[2].n))
    rows += [("", f"excluded.other.{code}", "", str(label), n) for code, n, label in _coded(other, OTHER_LABELS)]
    rows.append(("", "randomised", "", str(randomised.label), randomised.n))
    for arm_flow in arms:
        arm_code = arm_flow.arm
        arm_label = str(arm_flow.label)
        rows.append((arm_code, "allocated", arm_label, str(arm_flow.allocated.label), arm_flow.allocated.n))
        rows.append((arm_code, "received", arm_label, str(arm_flow.received.label), arm_flow.received.n))
        rows.append((arm_code, "not_received", arm_label, str(arm_flow.not_received.label), arm_flow.not_received.n))
        rows += [
            (arm_code, f"not_received.{code}", arm_label, str(label), n)
            for code, n, label in _coded(not_received[arm_code], NOT_RECEIVED_LABELS)
        ]
        for months, box in zip(time_points, arm_flow.follow_ups, strict=True):
            rows.append((arm_code, f"assessed_{months}", arm_label, str(box.label), box.n))
            counted = outcomes[(arm_code, months)]
            rest = Counter({code: n for code, n in counted.items() if code not in ASSESSED})
            rest[OUTCOME_NONE] = allocated[arm_code] - sum(counted.values())
            rows += [
                (arm_code, f"assessed_{months}.{code}", arm_label, str(label), n)
                for code, n, label in _coded(rest, OUTCOME_LABELS)
            ]
        rows.append((arm_code, "lost", arm_label, str(arm_flow.lost.label), arm_flow.lost.n))
        rows += [
            (arm_code, f"lost.{code}", arm_label, str(label), n)
            for code, n, label in _coded(lost[arm_code], lost_labels)
        ]
        rows.append((arm_code, "withdrawn", arm_label, str(arm_flow.withdrawn.label), arm_flow.withdrawn.n))
        rows += [
            (arm_code, f"withdrawn.{code}", arm_label, str(label), n)
            for code, n, label in _coded(withdrawn[arm_code], withdrawal_labels)
        ]
        rows.append((arm_code, "analysed", arm_label, str(arm_flow.analysed.label), arm_flow.analysed.n))
    flow_table = Table(
        key="flow",
        title=_("Participant flow (CONSORT)"),
        columns=[
            Column("arm", _("Arm code")),
            Column("box", _("Box")),
            Column("arm_label", _("Arm")),
            Column("label", _("Description")),
            Column("n", _("Families"), "int"),
        ],
        rows=rows,
        note=_(
            "A family that failed several criteria is counted once under each criterion it failed, so the "
            "criteria can add up to more than the families not meeting them."
        ),
    )
    checks_table = Table(
        key="checks",
        title=_("Checks of the flow diagram"),
        columns=[Column("check", _("Check")), Column("passed", _("Passed")), Column("detail", _("Numbers"))],
        rows=[(str(c.label), gettext("yes") if c.passed else gettext("NO"), c.detail) for c in checks],
    )
    return flow, flow_table, checks_table


def _ordered(counts: Counter, labels: dict) -> list[tuple[str, int]]:
    known = [(code, counts[code]) for code in labels if counts.get(code)]
    return known + [(code, counts[code]) for code in sorted(counts, key=str) if code not in labels and counts[code]]


def _coded(counts: Counter, labels: dict) -> list[tuple[str, int, object]]:
    return [(code, n, labels.get(code, code)) for code, n in _ordered(counts, labels)]


def _eligibility_and_consent(kinds: list[FamilyKind]) -> tuple[Table, Table, tuple[int, int]]:
    screened = sum(k.n for k in kinds if k.screened)
    eligible = sum(k.n for k in kinds if k.screened and k.eligible)
    failed: Counter = Counter()
    for k in kinds:
        if k.screened and not k.eligible:
            for code in k.failed:
                failed[code] += k.n
    criteria_labels = {c.value: c.label for c in EligibilityCriterion}
    rows: list[Row] = [
        ("screened", gettext("Screened"), screened, None),
        ("eligible", gettext("Eligible"), eligible, _share(eligible, screened)),
        ("not_eligible", gettext("Not eligible"), screened - eligible, _share(screened - eligible, screened)),
    ]
    rows += [
        (f"failed.{code}", str(label), n, _share(n, screened)) for code, n, label in _coded(failed, criteria_labels)
    ]
    eligibility = Table(
        key="eligibility",
        title=_("Eligibility"),
        columns=[
            Column("key", _("Code")),
            Column("label", _("Screening outcome")),
            Column("n", _("Families"), "int"),
            Column("share", _("Share of screened"), "percent"),
        ],
        rows=rows,
        note=_("The latest screening of each family decides. A family may fail several criteria."),
    )
    decided = [k for k in kinds if k.screened and k.eligible and k.decision]
    with_decision = sum(k.n for k in decided)
    consented = sum(k.n for k in decided if k.decision == ConsentDecision.CONSENTED)
    declined: Counter = Counter()
    for k in decided:
        if k.decision == ConsentDecision.DECLINED:
            declined[k.decline_reason or DeclineReason.OTHER.value] += k.n
    decline_labels = {c.value: c.label for c in DeclineReason}
    consent_rows: list[Row] = [
        ("eligible_with_decision", gettext("Eligible with a consent decision"), with_decision, None),
        ("consented", gettext("Consented"), consented, _share(consented, with_decision)),
        ("declined", gettext("Declined"), with_decision - consented, _share(with_decision - consented, with_decision)),
    ]
    consent_rows += [
        (f"declined.{code}", str(label), n, _share(n, with_decision))
        for code, n, label in _coded(declined, decline_labels)
    ]
    consent = Table(
        key="consent",
        title=_("Consent"),
        columns=[
            Column("key", _("Code")),
            Column("label", _("Consent outcome")),
            Column("n", _("Families"), "int"),
            Column("share", _("Share of eligible families with a decision"), "percent"),
        ],
        rows=consent_rows,
        note=_("The latest consent decision of each eligible family decides."),
    )
    return eligibility, consent, (consented, with_decision)


def _retention(a_kinds: list[AssessmentKind], time_points: list[int]) -> tuple[Table, dict[int, tuple[int, int]]]:
    due: Counter = Counter()
    assessed: Counter = Counter()
    inside: Counter = Counter()
    for a in a_kinds:
        key = (a.arm, a.months)
        if a.due:
            due[key] += a.n
            if a.outcome in ASSESSED:
                assessed[key] += a.n
                if not a.outside_window:
                    inside[key] += a.n
    rows: list[Row] = []
    for months in time_points:
        for arm in ARMS:
            key = (arm, months)
            rows.append(
                (
                    months,
                    time_point_label(months),
                    arm,
                    str(Arm(arm).label),
                    due[key],
                    assessed[key],
                    _share(assessed[key], due[key]),
                    inside[key],
                    _share(inside[key], assessed[key]),
                )
            )
    table = Table(
        key="retention",
        title=_("Retention and window compliance"),
        columns=[
            Column("months", _("Months"), "int"),
            Column("time_point", _("Time point")),
            Column("arm", _("Arm code")),
            Column("arm_label", _("Arm")),
            Column("due", _("Due"), "int"),
            Column("assessed", _("Assessed"), "int"),
            Column("retention", _("Retention"), "percent"),
            Column("in_window", _("Assessed inside the window"), "int"),
            Column("in_window_share", _("Share inside the window"), "percent"),
        ],
        rows=rows,
        note=_(
            "Due: recorded, or its window has closed. Assessed: completed or partly completed. Randomised "
            "families only."
        ),
    )
    by_time_point = {
        months: (sum(assessed[(arm, months)] for arm in ARMS), sum(due[(arm, months)] for arm in ARMS))
        for months in time_points
    }
    return table, by_time_point


def _range_months(filters: ReportFilters, sites: list[Site], on: date) -> list[date]:
    first = filters.start
    if first is None:
        first = (
            Family.objects.filter(site__in=sites)
            .order_by("referral_date")
            .values_list("referral_date", flat=True)
            .first()
            or on
        )
    last = filters.end or on
    return _months(first, max(first, last))


def _open_days(site_ids: list[int], months: list[date], on: date) -> dict[tuple[int, date], int]:
    """{(site id, month): days the site's recruitment was open in that month}, from the Site's history, up to
    yesterday (today is not over). A change takes effect on its day in Norway. Before a site's first history record
    its state is that record's when the record is the site's creation, else open (the model's default: sites seeded
    by a migration have no creation record); a site without any history is in its current state throughout."""
    if not months:
        return {}
    zone = _zone()
    first_day = months[0]
    last_day = min(add_months(months[-1], 1) - timedelta(days=1), on - timedelta(days=1))
    timelines: dict[int, list[tuple[date, str]]] = defaultdict(list)
    history = Site.history.filter(id__in=site_ids).order_by("id", "history_date", "history_id")
    for site_id, at, kind, state in history.values_list("id", "history_date", "history_type", "recruitment_state"):
        if not timelines[site_id]:
            timelines[site_id].append((date.min, state if kind == "+" else RecruitmentState.OPEN.value))
        timelines[site_id].append((at.astimezone(zone).date(), state))
    current = dict(Site.objects.filter(pk__in=site_ids).values_list("pk", "recruitment_state"))
    days: dict[tuple[int, date], int] = defaultdict(int)
    for site_id in site_ids:
        timeline = timelines.get(site_id) or [(date.min, current[site_id])]
        # The state on a day is that of the last change on or before it.
        index = 0
        day = first_day
        while day <= last_day:
            while index + 1 < len(timeline) and timeline[index + 1][0] <= day:
                index += 1
            if timeline[index][1] == RecruitmentState.OPEN:
                days[(site_id, _month(day))] += 1
            day += timedelta(days=1)
    return days


def _month_length(month: date) -> int:
    return (add_months(month, 1) - month).days


def _recruitment(
    months: list[date], sites: list[Site], trial_settings: TrialSettings, on: date
) -> tuple[list[MonthCount], Table, Table]:
    zone = _zone()
    counts: Counter = Counter()
    if months:
        begin = datetime.combine(months[0], time.min, tzinfo=zone)
        stop = datetime.combine(add_months(months[-1], 1), time.min, tzinfo=zone)
        for site_id, month, n in (
            Allocation.objects.filter(site__in=sites, randomised_at__gte=begin, randomised_at__lt=stop)
            .annotate(month=TruncMonth("randomised_at", tzinfo=zone))
            .values_list("site_id", "month")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            counts[(site_id, month.date() if isinstance(month, datetime) else month)] += n
    open_days = _open_days([s.pk for s in sites], months, on)
    planned = max(trial_settings.intervention_expected_months, 1)
    recruitment = []
    month_rows: list[Row] = []
    for site in sites:
        per_month = site.expected_recruitment / planned
        for month in months:
            share_open = open_days.get((site.pk, month), 0) / _month_length(month)
            target = per_month * share_open
            n = counts.get((site.pk, month), 0)
            recruitment.append(MonthCount(site.code, month, n, target))
            month_rows.append((site.code, month, n, round(target, 3), round(share_open, 3)))
    month_table = Table(
        key="recruitment_by_month",
        title=_("Recruitment per site and month"),
        columns=[
            Column("site", _("Site")),
            Column("month", _("Month"), "month"),
            Column("randomised", _("Randomised"), "int"),
            Column("target", _("Target"), "float"),
            Column("share_open", _("Share of the month open"), "percent"),
        ],
        rows=month_rows,
        note=_(
            "Randomisations by their date in Norway. The target spreads the site's expected recruitment over the "
            "planned recruitment period (the expected intervention length in months, from the trial settings), "
            "for the days the site was open."
        ),
    )
    site_rows: list[Row] = []
    for site in sites:
        randomised = sum(counts.get((site.pk, m), 0) for m in months)
        months_open = sum(open_days.get((site.pk, m), 0) for m in months) / DAYS_PER_MONTH
        site_rows.append(
            (
                site.code,
                site.recruitment_state,
                str(RecruitmentState(site.recruitment_state).label),
                site.expected_recruitment,
                randomised,
                round(months_open, 2),
                round(randomised / months_open, 3) if months_open else None,
            )
        )
    site_table = Table(
        key="recruitment_by_site",
        title=_("Recruitment per site"),
        columns=[
            Column("site", _("Site")),
            Column("state", _("Recruitment state code")),
            Column("state_label", _("Recruitment now")),
            Column("expected", _("Expected recruitment"), "int"),
            Column("randomised", _("Randomised in the period"), "int"),
            Column("months_open", _("Months open in the period"), "float"),
            Column("rate", _("Randomised per site-month open"), "float"),
        ],
        rows=site_rows,
        note=_("Months open are counted from the site's recorded recruitment states, in months of 30.44 days."),
    )
    return recruitment, month_table, site_table


def _adherence(families: QuerySet[Family], trial_settings: TrialSettings, on: date) -> tuple[Table, tuple[int, int]]:
    target = visit_selectors.target_quarters(trial_settings)
    week_counts = visit_selectors.family_week_counts(families, before=on)
    weeks_total = on_target = quarters_total = expected_total = 0
    for days, quarters, n in week_counts:
        expected = round(target * days / 7)
        if expected <= 0:
            continue
        weeks_total += n
        quarters_total += quarters * n
        expected_total += expected * n
        if quarters >= expected:
            on_target += n
    periods = InterventionPeriod.objects.filter(family__in=families.values("pk")).aggregate(
        started=Count("pk"),
        ended=Count("pk", filter=Q(ended_on__isnull=False)),
        ended_days=Sum(F("ended_on") - F("started_on"), filter=Q(ended_on__isnull=False)),
    )
    ended_days = periods["ended_days"]
    ended_days_total = ended_days.days if isinstance(ended_days, timedelta) else (ended_days or 0)
    ended = periods["ended"]
    rows: list[Row] = [
        ("family_weeks", gettext("Family-weeks of intervention (weeks ended)"), float(weeks_total)),
        ("hours_delivered", gettext("Hours delivered in those weeks"), quarters_total / 4),
        ("hours_expected", gettext("Hours expected (target, prorated)"), expected_total / 4),
        (
            "hours_per_family_week",
            gettext("Hours per family-week"),
            quarters_total / 4 / weeks_total if weeks_total else None,
        ),
        ("weekly_target", gettext("Weekly target (hours)"), float(trial_settings.weekly_hours_target)),
        ("weeks_on_target", gettext("Family-weeks on target"), float(on_target)),
        ("share_on_target", gettext("Share of family-weeks on target"), _share(on_target, weeks_total)),
        ("interventions_started", gettext("Interventions started"), float(periods["started"])),
        ("interventions_ended", gettext("Interventions ended"), float(ended)),
        (
            "mean_duration_months",
            gettext("Mean duration of ended interventions (months)"),
            round(ended_days_total / ended / DAYS_PER_MONTH, 2) if ended else None,
        ),
    ]
    table = Table(
        key="adherence",
        title=_("Adherence (intervention arm)"),
        columns=[Column("measure", _("Code")), Column("label", _("Measure")), Column("value", _("Value"), "float")],
        rows=rows,
        note=_(
            "Weeks are ISO weeks that ended before the report's day, within each family's intervention; a week's "
            "target is prorated for the days the intervention ran in it. Voided contacts are not counted."
        ),
    )
    return table, (on_target, weeks_total)


def _contacts(families: QuerySet[Family]) -> tuple[Table, Table]:
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_element: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, elements, n, quarters in visit_selectors.contact_mix(families):
        by_kind[kind][0] += n
        by_kind[kind][1] += quarters
        for element in set(elements):
            by_element[element][0] += n
            by_element[element][1] += quarters
    kind_rows: list[Row] = [
        (code, str(label), by_kind[code][0], by_kind[code][1] / 4) for code, label in ContactKind.choices
    ]
    element_rows: list[Row] = [
        (code, str(label), by_element[code][0], by_element[code][1] / 4) for code, label in Element.choices
    ]
    columns = [
        Column("code", _("Code")),
        Column("label", _("Label")),
        Column("contacts", _("Contacts"), "int"),
        Column("hours", _("Hours"), "float"),
    ]
    return (
        Table("contacts_by_kind", _("Contacts by kind"), columns, kind_rows, _("Voided contacts are not counted.")),
        Table(
            "contacts_by_element",
            _("Contacts by element of the model"),
            columns,
            element_rows,
            _("A contact may serve several elements: it is counted under each. Voided contacts are not counted."),
        ),
    )


def _caseload(months: list[date], sites: list[Site], on: date) -> Table:
    """Per month: the families with a Family Partner at the month's end (or today) against the capacity of the
    partners active now whose profile existed by then (partners' capacity and status as they are now: an
    approximation, docs/decisions.md)."""
    ends = [min(add_months(month, 1) - timedelta(days=1), on) for month in months]
    site_ids = [s.pk for s in sites]
    assigned = {}
    if ends:
        assigned = Assignment.objects.filter(family__site_id__in=site_ids).aggregate(
            **{
                f"m{index}": Count(
                    "family",
                    distinct=True,
                    filter=Q(started_on__lte=end) & (Q(ended_on__isnull=True) | Q(ended_on__gte=end)),
                )
                for index, end in enumerate(ends)
            }
        )
    created = dict(
        PartnerProfile.history.filter(site_id__in=site_ids, history_type="+")
        .values_list("id")
        .annotate(first=F("history_date"))
    )
    partners = list(PartnerProfile.objects.filter(site_id__in=site_ids, status="active").values_list("pk", "capacity"))
    zone = _zone()
    rows: list[Row] = []
    for index, (month, end) in enumerate(zip(months, ends, strict=True)):
        capacity = sum(cap for pk, cap in partners if pk not in created or created[pk].astimezone(zone).date() <= end)
        n = assigned.get(f"m{index}", 0)
        rows.append((month, end, n, capacity, _share(n, capacity)))
    return Table(
        key="caseload",
        title=_("Family Partner caseload use"),
        columns=[
            Column("month", _("Month"), "month"),
            Column("on", _("Counted on"), "date"),
            Column("families", _("Families with a Family Partner"), "int"),
            Column("capacity", _("Capacity of active Family Partners"), "int"),
            Column("use", _("Caseload use"), "percent"),
        ],
        rows=rows,
        note=_(
            "Counted on the month's last day (today for this month), over the chosen sites' Family Partners; "
            "capacity is that of the partners active now whose profile existed on that day."
        ),
    )


def _withdrawals(kinds: list[FamilyKind]) -> Table:
    counts: Counter = Counter()
    for k in kinds:
        if k.withdrawal is not None:
            counts[(k.arm or "", k.withdrawal)] += k.n
    labels = {c.value: c.label for c in WithdrawalReason}
    arm_labels = {Arm.INTERVENTION.value: Arm.INTERVENTION.label, Arm.CONTROL.value: Arm.CONTROL.label}
    rows: list[Row] = []
    for arm in (Arm.INTERVENTION.value, Arm.CONTROL.value, ""):
        for code, label in labels.items():
            if counts.get((arm, code)):
                rows.append(
                    (arm, str(arm_labels.get(arm, gettext("Not randomised"))), code, str(label), counts[(arm, code)])
                )
        for (counted_arm, code), n in sorted(counts.items()):
            if counted_arm == arm and code not in labels:
                rows.append((arm, str(arm_labels.get(arm, gettext("Not randomised"))), code, code, n))
    return Table(
        key="withdrawals",
        title=_("Withdrawals"),
        columns=[
            Column("arm", _("Arm code")),
            Column("arm_label", _("Arm")),
            Column("reason", _("Reason code")),
            Column("reason_label", _("Reason")),
            Column("n", _("Families"), "int"),
        ],
        rows=rows,
    )


def _blinding(families: QuerySet[Family]) -> tuple[list[BlindingIndex], Table]:
    counts: Counter = Counter()
    for arm, guess, n in (
        BlindingGuess.objects.filter(
            assessment__family__in=families.filter(allocation__isnull=False).values("pk"),
            assessment__status__in=ASSESSED,
        )
        .order_by()
        .values_list("assessment__family__allocation__arm", "guess")
        .annotate(n=Count("pk"))
    ):
        counts[(arm, guess)] += n
    indexes = []
    rows: list[Row] = []
    for arm in ARMS:
        other = Arm.CONTROL if arm == Arm.INTERVENTION else Arm.INTERVENTION
        correct, incorrect, dont_know = (
            counts[(arm, arm.value)],
            counts[(arm, other.value)],
            counts[(arm, ArmGuess.DONT_KNOW.value)],
        )
        estimate = stats.bang_blinding_index(correct, incorrect, dont_know)
        indexes.append(BlindingIndex(arm, Arm(arm).label, estimate.n, estimate.index, estimate.low, estimate.high))
        rows.append(
            (
                arm.value,
                str(Arm(arm).label),
                correct,
                incorrect,
                dont_know,
                estimate.n,
                estimate.index,
                estimate.low,
                estimate.high,
            )
        )
    table = Table(
        key="blinding",
        title=_("Blinding index (Bang)"),
        columns=[
            Column("arm", _("Arm code")),
            Column("arm_label", _("Arm")),
            Column("correct", _("Guessed the real arm"), "int"),
            Column("incorrect", _("Guessed the other arm"), "int"),
            Column("dont_know", _("Did not know"), "int"),
            Column("guesses", _("Guesses"), "int"),
            Column("index", _("Blinding index"), "float"),
            Column("low", _("CI, low"), "float"),
            Column("high", _("CI, high"), "float"),
        ],
        rows=rows,
        note=_(
            "Every completed or partly completed follow-up assessment's guess counts. 0 is random guessing, 1 "
            "complete unblinding, -1 all guessing the opposite arm. CI: the 95 per cent confidence interval."
        ),
    )
    return indexes, table


def _progression(
    trial_settings: TrialSettings,
    sites: list[Site],
    filters: ReportFilters,
    randomised: int,
    consent: tuple[int, int],
    retention: dict[int, tuple[int, int]],
    adherence: tuple[int, int],
) -> tuple[list[Criterion], Table]:
    target = (
        trial_settings.target_sample_size if filters.site_ids is None else sum(s.expected_recruitment for s in sites)
    )
    retention_months = max([m for m in retention if 0 < m <= 12], default=None)
    retained = retention.get(retention_months, (0, 0)) if retention_months is not None else (0, 0)
    values = {
        "recruitment": (randomised, target),
        "consent": consent,
        "retention": retained,
        "adherence": adherence,
    }
    labels: dict[str, Label] = {
        "recruitment": _("Recruitment: randomised families of the target"),
        "consent": _("Consent: consented of eligible families with a decision"),
        "retention": _("Retention: assessed at %(months)s months of those due") % {"months": retention_months or 12},
        "adherence": _("Adherence: intervention family-weeks on target"),
    }
    criteria = []
    rows: list[Row] = []
    for key in PROGRESSION:
        numerator, denominator = values[key]
        green = getattr(trial_settings, f"progression_{key}_green") / 100
        amber = getattr(trial_settings, f"progression_{key}_amber") / 100
        value = _share(numerator, denominator)
        interval = stats.wilson_interval(numerator, denominator)
        colour = "" if value is None else "green" if value >= green else "amber" if value >= amber else "red"
        criterion = Criterion(
            key=key,
            label=labels[key],
            numerator=numerator,
            denominator=denominator,
            value=value,
            low=interval.low if interval else None,
            high=interval.high if interval else None,
            green=green,
            amber=amber,
            colour=colour,
        )
        criteria.append(criterion)
        rows.append(
            (
                key,
                str(criterion.label),
                numerator,
                denominator,
                value,
                criterion.low,
                criterion.high,
                green,
                amber,
                colour,
            )
        )
    table = Table(
        key="progression",
        title=_("Progression criteria"),
        columns=[
            Column("criterion", _("Code")),
            Column("label", _("Criterion")),
            Column("numerator", _("Numerator"), "int"),
            Column("denominator", _("Denominator"), "int"),
            Column("value", _("Value"), "percent"),
            Column("low", _("Wilson interval, low"), "percent"),
            Column("high", _("Wilson interval, high"), "percent"),
            Column("green", _("Green from"), "percent"),
            Column("amber", _("Amber from"), "percent"),
            Column("colour", _("Colour")),
        ],
        rows=rows,
        note=_(
            "Green at or above the green threshold, amber at or above the amber one, red below; no colour while "
            "the denominator is 0. The Wilson interval is the 95 per cent one; it is left out when the numerator "
            "exceeds the denominator."
        ),
    )
    return criteria, table


THRESHOLD_FIELDS = [f"progression_{key}_{level}" for key in PROGRESSION for level in ("green", "amber")]
THRESHOLD_LABELS: dict[str, Label] = {
    name: TrialSettings._meta.get_field(name).verbose_name  # type: ignore[union-attr]  # model fields, not relations
    for name in THRESHOLD_FIELDS
}


def _threshold_changes() -> tuple[list[ThresholdChange], Table]:
    first = Allocation.objects.order_by("randomised_at").values_list("randomised_at", flat=True).first()
    changes = []
    if first is not None:
        previous = None
        for record in TrialSettings.history.order_by("history_date", "history_id").select_related("history_user"):
            if previous is not None and record.history_date > first:
                for name in THRESHOLD_FIELDS:
                    old, new = getattr(previous, name), getattr(record, name)
                    if old != new:
                        user = record.history_user
                        changes.append(
                            ThresholdChange(
                                field=name,
                                label=THRESHOLD_LABELS[name],
                                old=old,
                                new=new,
                                changed_at=record.history_date,
                                changed_by=display_name(user) if user else "",
                                reason=record.history_change_reason or "",
                            )
                        )
            previous = record
    table = Table(
        key="threshold_changes",
        title=_("Progression thresholds changed after the first randomisation"),
        columns=[
            Column("field", _("Setting")),
            Column("label", _("Threshold")),
            Column("old", _("Old value, per cent"), "int"),
            Column("new", _("New value, per cent"), "int"),
            Column("changed_on", _("Changed on"), "date"),
            Column("changed_by", _("Changed by")),
            Column("reason", _("Reason")),
        ],
        rows=[
            (
                c.field,
                str(c.label),
                cast(int, c.old),  # a threshold: a whole percentage
                cast(int, c.new),
                timezone.localdate(c.changed_at),
                c.changed_by,
                c.reason,
            )
            for c in changes
        ],
    )
    return changes, table
