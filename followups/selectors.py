"""Reads of follow-ups that several views, the family page's section and the reminders share.

Who sees what (docs/decisions.md, "Issue 10: the schedule, the assessments and the grid"): the outcome assessors of
a family's site record; its researchers and the PI read; data managers and Family Partners see no follow-up
(data managers see no family data; a partner's view would tell the assessors nothing they need). Nothing here
reads the arm.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext

from families.models import ConsentDecision, Family, FamilyStatus
from families.selectors import get_family_for_user
from followups.models import Assessment, AssessmentStatus
from followups.schedule import BASELINE
from followups.states import TO_DO, State, assessment_state
from trial.dates import today
from trial.models import TrialSettings
from trial.roles import Role, User, can_at_site, has_role, site_ids_for

READ_ROLES = (Role.RESEARCHER, Role.OUTCOME_ASSESSOR, Role.PRINCIPAL_INVESTIGATOR)
RECORD_ROLES = (Role.OUTCOME_ASSESSOR,)
FAMILIES_PER_PAGE = 100
# How far ahead of a window's opening, and after its closing (a late visit to book), an assessor may look up a
# family's contact details to book an assessment (docs/decisions.md).
BOOKING_HORIZON_DAYS = 30


def can_see_follow_ups(user: User) -> bool:
    return has_role(user, *READ_ROLES)


def can_read(user: User, family: Family) -> bool:
    return can_at_site(user, family.site_id, *READ_ROLES)


def can_record(user: User, family: Family) -> bool:
    return has_role(user, *RECORD_ROLES) and can_at_site(user, family.site_id, *RECORD_ROLES)


def get_family_for_follow_ups(user: User, study_id: str) -> Family:
    """The family if `user` may read its follow-ups (the pages and the API): 404 otherwise, also to a data manager
    or a Family Partner, so that study IDs do not leak."""
    family = get_family_for_user(user, study_id)
    if not can_read(user, family):
        raise Http404
    return family


def consent_date(family: Family) -> date | None:
    consent = family.consents.filter(decision=ConsentDecision.CONSENTED).order_by("-decided_on").first()
    return consent.decided_on if consent is not None else None


def randomisation_date(family: Family) -> date | None:
    from randomization.models import Allocation

    randomised_at = Allocation.objects.filter(family=family).values_list("randomised_at", flat=True).first()
    return today(randomised_at) if randomised_at is not None else None


def state_of(assessment: Assessment, *, on: date | None = None, closing_days: int | None = None) -> State:
    if closing_days is None:
        closing_days = TrialSettings.current().reminder_window_closes_days
    return assessment_state(
        status=assessment.status,
        opens_on=assessment.opens_on,
        closes_on=assessment.closes_on,
        on=on or today(),
        closing_days=closing_days,
    )


def state_q(state: str, *, on: date, closing_days: int) -> Q:
    """The assessments in `state` on the local date `on`, as a filter: the same rules as
    `followups.states.assessment_state` (a test checks that they agree for every state and edge)."""
    scheduled = Q(status=AssessmentStatus.SCHEDULED)
    soon = on + timedelta(days=closing_days)
    if state == State.NOT_YET_OPEN:
        return scheduled & Q(opens_on__gt=on)
    if state == State.OPEN:
        return scheduled & Q(opens_on__lte=on) & (Q(closes_on__isnull=True) | Q(closes_on__gt=soon))
    if state == State.CLOSING_SOON:
        return scheduled & Q(opens_on__lte=on, closes_on__gte=on, closes_on__lte=soon)
    if state == State.OVERDUE:
        return scheduled & Q(closes_on__lt=on)
    return Q(status=state)


def _visible_families(user: User) -> QuerySet[Family]:
    site_ids = site_ids_for(user, *READ_ROLES)
    families = Family.objects.all()
    return families if site_ids is None else families.filter(site_id__in=site_ids)


@dataclass(frozen=True)
class GridAssessment:
    """The fields of an assessment the grid shows (read as tuples: ten thousand families make the rows add up)."""

    pk: int
    family_id: int
    months: int
    status: str
    opens_on: date
    closes_on: date | None
    booked_on: date | None


@dataclass(frozen=True)
class Cell:
    assessment: GridAssessment | None
    state: State | None


@dataclass(frozen=True)
class GridRow:
    family: Family
    cells: list[Cell]


@dataclass(frozen=True)
class Grid:
    page: Page
    time_points: list[int]
    rows: list[GridRow]


def time_points(trial_settings: TrialSettings, extra: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    return sorted({BASELINE, *trial_settings.follow_up_months, *extra})


def time_point_label(months: int) -> str:
    """ "baseline" or "3 months", in the active language (pages, the grid's template filter, the datasets)."""
    if months == BASELINE:
        return gettext("baseline")
    return gettext("%(months)s months") % {"months": months}


def status_grid(user: User, *, site_id: int | None = None, state: str = "", page_number: str | None = None) -> Grid:
    """Families by time points for the grid: families of the user's sites with a schedule, by study ID, a page of
    `FAMILIES_PER_PAGE` at a time. Four queries whatever the number of families (count, the page's families with
    their sites, their assessments, the settings)."""
    trial_settings = TrialSettings.current()
    on = today()
    # Families with a schedule are those that consented (the baseline is made then): a status filter counts them
    # far faster than a subquery per family.
    families = _visible_families(user).filter(
        status__in=[FamilyStatus.CONSENTED, FamilyStatus.RANDOMISED, FamilyStatus.WITHDRAWN]
    )
    if site_id is not None:
        families = families.filter(site_id=site_id)
    if state:
        wanted = Assessment.objects.filter(
            state_q(state, on=on, closing_days=trial_settings.reminder_window_closes_days), family=OuterRef("pk")
        )
        families = families.filter(Exists(wanted))
    page = Paginator(families.select_related("site").order_by("study_id"), FAMILIES_PER_PAGE).get_page(page_number)
    page_families = list(page)
    by_family: dict[int, dict[int, GridAssessment]] = {}
    fields = ("pk", "family_id", "months", "status", "opens_on", "closes_on", "booked_on")
    for values in Assessment.objects.filter(family__in=[f.pk for f in page_families]).values_list(*fields):
        row = GridAssessment(*values)
        by_family.setdefault(row.family_id, {})[row.months] = row
    points = time_points(trial_settings, {m for rows in by_family.values() for m in rows})
    closing_days = trial_settings.reminder_window_closes_days
    rows = []
    for family in page_families:
        cells = []
        for months in points:
            assessment = by_family.get(family.pk, {}).get(months)
            cell_state: State | None = None
            if assessment is not None:
                cell_state = assessment_state(
                    status=assessment.status,
                    opens_on=assessment.opens_on,
                    closes_on=assessment.closes_on,
                    on=on,
                    closing_days=closing_days,
                )
            cells.append(Cell(assessment, cell_state))
        rows.append(GridRow(family, cells))
    return Grid(page, points, rows)


@dataclass(frozen=True)
class WorkItem:
    assessment: Assessment
    state: State
    bookable: bool  # its family's contact details may be looked up for it


@dataclass(frozen=True)
class WorkSection:
    items: list[WorkItem]  # the first WORKLIST_LIMIT
    total: int


@dataclass(frozen=True)
class Worklist:
    due_this_week: WorkSection
    overdue: WorkSection
    booked: WorkSection


# Each section of the worklist shows its first rows, the most urgent first; the grid, filtered by state, has them all.
WORKLIST_LIMIT = 50


def _active(assessments: QuerySet[Assessment]) -> QuerySet[Assessment]:
    # A withdrawn family, or one lost to follow-up, is not chased for what closed before its schedule stopped.
    return assessments.filter(
        status=AssessmentStatus.SCHEDULED,
        family__status__in=[FamilyStatus.CONSENTED, FamilyStatus.RANDOMISED],
        family__lost_to_follow_up__isnull=True,
    )


def worklist(user: User) -> Worklist:
    """An assessor's week at the sites where they assess: windows open some day this week and not booked, overdue
    assessments, and bookings, each the WORKLIST_LIMIT most urgent and their number. Six queries whatever the
    number of families."""
    site_ids = site_ids_for(user, *RECORD_ROLES)
    assessments = _active(Assessment.objects.select_related("family", "family__site"))
    if site_ids is not None:
        assessments = assessments.filter(family__site_id__in=site_ids)
    on = today()
    week_ends = on + timedelta(days=6 - on.weekday())
    closing_days = TrialSettings.current().reminder_window_closes_days

    def items(query: QuerySet[Assessment]) -> WorkSection:
        first = [
            WorkItem(a, state_of(a, on=on, closing_days=closing_days), bookable(a, on)) for a in query[:WORKLIST_LIMIT]
        ]
        return WorkSection(first, len(first) if len(first) < WORKLIST_LIMIT else query.count())

    return Worklist(
        due_this_week=items(
            assessments.filter(booked_on__isnull=True, opens_on__lte=week_ends)
            .filter(Q(closes_on__isnull=True) | Q(closes_on__gte=on))
            .order_by("closes_on", "family__study_id", "months")
        ),
        overdue=items(assessments.filter(closes_on__lt=on).order_by("closes_on", "family__study_id", "months")),
        booked=items(
            assessments.filter(booked_on__isnull=False)
            .filter(Q(closes_on__isnull=True) | Q(closes_on__gte=on))
            .order_by("booked_on", "family__study_id", "months")
        ),
    )


def bookable(assessment: Assessment, on: date) -> bool:
    """Whether an assessment not recorded is one to book now: its window open, opening within
    `BOOKING_HORIZON_DAYS`, or closed less than that long ago (a late visit)."""
    horizon = timedelta(days=BOOKING_HORIZON_DAYS)
    return (
        assessment.status == AssessmentStatus.SCHEDULED
        and assessment.opens_on <= on + horizon
        and (assessment.closes_on is None or assessment.closes_on >= on - horizon)
    )


def may_see_contact_details(user: User, family: Family) -> bool:
    """An assessor of the family's site, while one of its assessments is to book (`bookable`; the family neither
    withdrawn nor lost to follow-up)."""
    if not can_record(user, family):
        return False
    on, horizon = today(), timedelta(days=BOOKING_HORIZON_DAYS)
    return (
        _active(Assessment.objects.filter(family=family))
        .filter(opens_on__lte=on + horizon)
        .filter(Q(closes_on__isnull=True) | Q(closes_on__gte=on - horizon))
        .exists()
    )


def family_schedule(family: Family) -> list[tuple[Assessment, State]]:
    on, closing_days = today(), TrialSettings.current().reminder_window_closes_days
    return [(a, state_of(a, on=on, closing_days=closing_days)) for a in family.assessments.order_by("months")]


__all__ = ["TO_DO"]
