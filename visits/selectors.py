"""Who may see the Family Partner's work, and the reads its pages share (caseloads, waiting lists, hours).

The work reveals the arm (only intervention families have a Family Partner), so a blinded outcome assessor
sees none of it; researchers of the family's site and the PI see it; a Family Partner sees only the families
assigned to them now. Every read here takes a fixed number of queries, however many contacts there are:
hours come from the daily totals (ContactDay), summed per ISO week.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import User as AuthUser
from django.db import connection
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from families.models import Family, FamilyStatus
from randomization.models import AllocationAnnotation
from randomization.selectors import intervention_families
from trial.models import Site, TrialSettings
from trial.roles import Role, User, can_at_site, has_role, is_blinded, site_ids_for, users_with_role
from visits import weeks
from visits.models import Assignment, Contact, ContactDay, InterventionPeriod, PartnerProfile, PartnerStatus

# Roles that see a site's caseload and hours (the PI everywhere, read-only); researchers also manage it.
WORK_ROLES = (Role.RESEARCHER, Role.PRINCIPAL_INVESTIGATOR)
MANAGE_ROLES = (Role.RESEARCHER,)


def work_site_ids(user: User) -> frozenset[int] | None:
    """Sites whose caseload and hours the user sees (None: all); none at all for a blinded user."""
    if is_blinded(user):
        return frozenset()
    return site_ids_for(user, *WORK_ROLES)


def can_see_caseload(user: User) -> bool:
    site_ids = work_site_ids(user)
    return site_ids is None or bool(site_ids)


def can_manage_caseload(user: User, site_id: int) -> bool:
    return not is_blinded(user) and can_at_site(user, site_id, *MANAGE_ROLES)


def partner_profile_of(user: User) -> PartnerProfile | None:
    """The user's Family Partner profile, if they hold the role and have one (cached on the user)."""
    if not has_role(user, Role.FAMILY_PARTNER):
        return None
    if not hasattr(user, "_partner_profile"):
        user._partner_profile = PartnerProfile.objects.select_related("site", "user").filter(user=user.pk).first()  # type: ignore[union-attr]  # a per-request cache on the user
    return user._partner_profile  # type: ignore[union-attr]


def is_partner_of(user: User, family: Family) -> bool:
    """Whether `family` is assigned to the user (as a Family Partner) now."""
    return (
        has_role(user, Role.FAMILY_PARTNER)
        and not is_blinded(user)
        and Assignment.objects.filter(family=family, ended_on__isnull=True, partner__user=user.pk).exists()
    )


def former_partner_until(user: User, family: Family, today: date | None = None) -> date | None:
    """The last day on which a former Family Partner of the family (their assignment ended by a reassignment or the
    intervention's end) still reads, corrects and voids their own contacts: the correction window of the trial
    settings after their last assignment to the family ended. None for anyone else, and once the window closed."""
    if not has_role(user, Role.FAMILY_PARTNER) or is_blinded(user):
        return None
    ended = Assignment.objects.filter(family=family, partner__user=user.pk, ended_on__isnull=False).aggregate(
        last=Max("ended_on")
    )["last"]
    if ended is None:
        return None
    until = ended + timedelta(days=TrialSettings.current().contact_correction_days)
    return until if (today or weeks.today()) <= until else None


@dataclass(frozen=True)
class WorkAccess:
    """What a user may do with a family's Family Partner work: see it (its partner now, the site's researchers,
    the PI; a former partner their own contacts, for a while; never a blinded user), and log contacts (its
    partner now)."""

    sees: bool
    is_partner: bool
    former_until: date | None = None  # a former partner: only their own contacts, until this day

    @property
    def changes_own_contacts(self) -> bool:
        return self.is_partner or self.former_until is not None


def work_access(user: User, family: Family) -> WorkAccess:
    if is_blinded(user):
        return WorkAccess(sees=False, is_partner=False)
    if is_partner_of(user, family):
        return WorkAccess(sees=True, is_partner=True)
    former_until = former_partner_until(user, family)
    return WorkAccess(
        sees=former_until is not None or can_at_site(user, family.site_id, *WORK_ROLES),
        is_partner=False,
        former_until=former_until,
    )


@dataclass(frozen=True)
class ContactRights:
    """What a user may do with a family's contacts, worked out once per family (a page of contacts asks no more).

    Notes (and a void's reason) are for their author and the family's site researchers only: not the PI, never
    exported. Its author corrects and voids a contact while the family is theirs (and for the correction window
    after it stopped being theirs); the site's researchers void any contact logged by mistake. Whether the contact
    is voided already is the caller's business."""

    user_id: int | None
    own: bool  # corrects and voids their own contacts with the family
    manages: bool  # a researcher of the family's site

    def reads_notes(self, contact: Contact) -> bool:
        return contact.author_id == self.user_id or self.manages

    def corrects(self, contact: Contact) -> bool:
        return contact.author_id == self.user_id and self.own

    def voids(self, contact: Contact) -> bool:
        return self.corrects(contact) or self.manages


def contact_rights(user: User, family: Family, access: WorkAccess | None = None) -> ContactRights:
    """Pass the user's `access` to the family's work when the caller has it (one query fewer)."""
    access = access or work_access(user, family)
    return ContactRights(
        user_id=user.pk, own=access.changes_own_contacts, manages=can_manage_caseload(user, family.site_id)
    )


# --- Hours per ISO week -------------------------------------------------------------------------------------


def target_quarters(trial_settings: TrialSettings) -> int:
    return int(trial_settings.weekly_hours_target * weeks.QUARTERS_PER_HOUR)


def week_quarters(family_ids, first: weeks.Week, last: weeks.Week) -> dict[tuple[int, date], int]:
    """{(family id, Monday): quarter-hours} for the weeks `first` to `last`; one query over the daily totals,
    summed into weeks here (the calendar's weeks, without the database's time-zone conversions)."""
    totals: dict[tuple[int, date], int] = defaultdict(int)
    for family_id, day, quarters in ContactDay.objects.filter(
        family_id__in=family_ids, day__range=(first.start, last.end), quarters__gt=0
    ).values_list("family_id", "day", "quarters"):
        totals[(family_id, weeks.week_start(day))] += quarters
    return totals


def last_contact_days(family_ids) -> dict[int, date]:
    return dict(
        ContactDay.objects.filter(family_id__in=family_ids, quarters__gt=0)
        .values_list("family_id")
        .annotate(last=Max("day"))
        .values_list("family_id", "last")
    )


@dataclass
class WeekDose:
    """A family's hours in one week against the target (prorated for the days the intervention ran).

    A week still running is judged against the part of it that has passed (`expected_so_far`: the days before
    today), so that a Monday with nothing logged yet is not "low"; its bar still fills towards the whole week."""

    week: weeks.Week
    quarters: int
    expected_quarters: int  # 0: the intervention did not run that week
    expected_so_far: int | None = None  # a week still running: the target of its days before today

    @property
    def hours(self) -> Decimal:
        return weeks.hours(self.quarters)

    @property
    def in_period(self) -> bool:
        return self.expected_quarters > 0

    @property
    def percent(self) -> int:
        if not self.expected_quarters:
            return 0
        return round(100 * self.quarters / self.expected_quarters)

    @property
    def level(self) -> str:
        """on-target (at least the target), partial (at least half), low, or outside (not in the intervention)."""
        if not self.in_period:
            return "outside"
        expected = self.expected_quarters if self.expected_so_far is None else self.expected_so_far
        if self.quarters >= expected:
            return "on-target"
        if 2 * self.quarters >= expected:
            return "partial"
        return "low"

    @property
    def bar_percent(self) -> int:
        return min(self.percent, 100)


def expected_quarters(
    period: InterventionPeriod | None, week: weeks.Week, target: int, before: date | None = None
) -> int:
    """The target for one week, prorated by the days of that week within the intervention period (and, with
    `before`, only the days before it)."""
    if period is None:
        return 0
    first = max(week.start, period.started_on)
    last = min(week.end, period.ended_on or week.end)
    if before is not None:
        last = min(last, before - timedelta(days=1))
    days = (last - first).days + 1
    return round(target * days / 7) if days > 0 else 0


# --- The Family Partner's home page ----------------------------------------------------------------------


@dataclass
class PartnerFamily:
    assignment: Assignment
    this_week: WeekDose
    last_week: WeekDose
    last_contact: date | None
    days_without_contact: int
    no_contact_days: int  # the trial setting: from this many days without a contact, the family needs attention

    @property
    def family(self) -> Family:
        return self.assignment.family

    @property
    def needs_contact(self) -> bool:
        return self.days_without_contact >= self.no_contact_days


def partner_families(profile: PartnerProfile, today: date) -> list[PartnerFamily]:
    """The partner's families now (with the name the partner knows them by), with this week's and last week's
    hours: three queries."""
    assignments = list(
        Assignment.objects.filter(partner=profile, ended_on__isnull=True)
        .select_related("family__site", "family__intervention", "family__identity")
        .order_by("family__site__code", "family__number")
    )
    family_ids = [a.family_id for a in assignments]
    this_week = weeks.week_of(today)
    last_week = this_week.shifted(-1)
    totals = week_quarters(family_ids, last_week, this_week)
    last_contacts = last_contact_days(family_ids)
    trial_settings = TrialSettings.current()
    target = target_quarters(trial_settings)
    rows = []
    for assignment in assignments:
        period = getattr(assignment.family, "intervention", None)
        last = last_contacts.get(assignment.family_id)
        since = last or assignment.started_on
        rows.append(
            PartnerFamily(
                assignment=assignment,
                this_week=_dose(assignment.family_id, this_week, totals, period, target, today),
                last_week=_dose(assignment.family_id, last_week, totals, period, target),
                last_contact=last,
                days_without_contact=(today - since).days,
                no_contact_days=trial_settings.no_contact_days,
            )
        )
    return rows


@dataclass
class FormerFamily:
    study_id: str
    until: date  # the last day the partner still corrects their contacts with it


def former_families(profile: PartnerProfile, today: date) -> list[FormerFamily]:
    """The families the partner had until recently (not theirs now), while they may still correct their contacts
    with them (selectors.former_partner_until's window): one query."""
    days = TrialSettings.current().contact_correction_days
    current = Assignment.objects.filter(partner=profile, ended_on__isnull=True).values("family_id")
    return [
        FormerFamily(study_id, ended + timedelta(days=days))
        for study_id, ended in Assignment.objects.filter(partner=profile, ended_on__isnull=False)
        .exclude(family_id__in=current)
        .values_list("family__study_id")
        .annotate(last=Max("ended_on"))
        .filter(last__gte=today - timedelta(days=days))
        .order_by("family__study_id")
        .values_list("family__study_id", "last")
    ]


def _dose(family_id: int, week: weeks.Week, totals, period, target: int, today: date | None = None) -> WeekDose:
    """With `today` in the week, the week is judged on its days before today."""
    running = today is not None and week.start <= today <= week.end
    so_far = expected_quarters(period, week, target, before=today) if running else None
    return WeekDose(week, totals.get((family_id, week.start), 0), expected_quarters(period, week, target), so_far)


# --- A family's work (the family's Family Partner page) --------------------------------------------------


def family_weeks(
    family: Family, today: date, count: int = 8, period: InterventionPeriod | None = None
) -> list[WeekDose]:
    """The family's last `count` weeks of its intervention, newest first: none before it started, none after it
    ended. Pass its intervention `period` when the caller has read it."""
    if period is None:
        period = InterventionPeriod.objects.filter(family=family).first()
    if period is None:
        return []
    last = weeks.week_of(min(today, period.ended_on or today))
    shown = [week for week in weeks.weeks_until(last, count) if week.end >= period.started_on]
    totals = week_quarters([family.pk], shown[0], last)
    target = target_quarters(TrialSettings.current())
    return [_dose(family.pk, week, totals, period, target, today) for week in reversed(shown)]


def family_contacts(family: Family) -> QuerySet[Contact]:
    """The family's contacts, newest first, each with how often it was corrected (its history's changes)."""
    corrections = (
        # A change that voids the contact is its void, not a correction.
        Contact.history.filter(id=OuterRef("pk"), history_type="~", voided_at__isnull=True)
        .order_by()
        .values("id")
        .annotate(count=Count("history_id"))
        .values("count")
    )
    return (
        Contact.objects.filter(family=family)
        .select_related("author", "voided_by")
        .annotate(corrections=Coalesce(Subquery(corrections), 0))
        .order_by("-contact_date", "-pk")
    )


def current_assignment(family: Family) -> Assignment | None:
    return Assignment.objects.filter(family=family, ended_on__isnull=True).select_related("partner__user").first()


# --- Caseload and waiting list (researchers and the PI) ----------------------------------------------------


def waiting_families(site_ids: frozenset[int] | None) -> QuerySet[Family]:
    """Randomised intervention families that have never had a Family Partner, longest waiting first (a withdrawn
    family's status is "withdrawn": it never waits), each with its allocation's "randomised in error" mark."""
    families = intervention_families(Family.objects.filter(status=FamilyStatus.RANDOMISED, intervention__isnull=True))
    if site_ids is not None:
        families = families.filter(site_id__in=site_ids)
    return families.select_related("site", "allocation__annotation").order_by("allocation__randomised_at", "pk")


def randomised_in_error(family: Family) -> AllocationAnnotation | None:
    """The family's randomisation marked as made in error, if it is: the family stays in its arm (intention to
    treat), and a researcher confirms before it gets a Family Partner."""
    return AllocationAnnotation.objects.select_related("annotated_by").filter(allocation__family=family).first()


@dataclass
class SiteCaseload:
    site: Site
    partners: list[PartnerProfile] = field(default_factory=list)
    waiting: list[Family] = field(default_factory=list)
    without_profile: list[AuthUser] = field(default_factory=list)

    @property
    def free_slots(self) -> int:
        return sum(p.free_slots for p in self.partners if p.status == PartnerStatus.ACTIVE)


def caseloads(site_ids: frozenset[int] | None, today: date) -> list[SiteCaseload]:
    """Each visible site's partners with their families now, its waiting list, and the Family Partners the
    administrator has not set up yet. Six queries, whatever the number of partners and families."""
    sites = Site.objects.order_by("code")
    if site_ids is not None:
        sites = sites.filter(pk__in=site_ids)
    by_site = {site.pk: SiteCaseload(site) for site in sites}
    # The partners' families as study IDs only: a page of every site's caseload builds no model per family.
    study_ids: dict[int, list[str]] = defaultdict(list)
    for partner_id, study_id in (
        Assignment.objects.filter(ended_on__isnull=True, partner__site_id__in=by_site)
        .order_by("family__number")
        .values_list("partner_id", "family__study_id")
    ):
        study_ids[partner_id].append(study_id)
    profiled_user_ids = set()
    for profile in PartnerProfile.objects.filter(site_id__in=by_site).select_related("user"):
        profile.study_ids = study_ids[profile.pk]  # type: ignore[attr-defined]  # for the page
        by_site[profile.site_id].partners.append(profile)
        profiled_user_ids.add(profile.user_id)
    for family in waiting_families(frozenset(by_site)):
        family.waiting_days = (today - timezone.localdate(family.allocation.randomised_at)).days  # type: ignore[attr-defined]  # for the page
        by_site[family.site_id].waiting.append(family)
    for user in (
        users_with_role(Role.FAMILY_PARTNER)
        .filter(trial_sites__in=list(by_site))
        .exclude(pk__in=profiled_user_ids)
        .prefetch_related("trial_sites")
    ):
        for site in user.trial_sites.all():
            if site.pk in by_site:
                by_site[site.pk].without_profile.append(user)
    return list(by_site.values())


def assignable_partners(family: Family) -> QuerySet[PartnerProfile]:
    """The family's site's Family Partners, for the assignment form (who has a free slot is shown there)."""
    return PartnerProfile.objects.filter(
        site_id=family.site_id, user__is_active=True, user__groups__name=Role.FAMILY_PARTNER
    ).select_related("user")


@dataclass
class SlotAlert:
    site: Site
    waiting: int
    free_slots: int


def slot_alerts(user: User) -> list[SlotAlert]:
    """Sites of a researcher where families wait while a Family Partner has a free slot: told on every page
    until they are assigned. Two queries; none for other roles."""
    if is_blinded(user) or not has_role(user, *MANAGE_ROLES):
        return []
    site_ids = site_ids_for(user, *MANAGE_ROLES)
    waiting: dict[int, int] = defaultdict(int)
    for site_id in waiting_families(site_ids).values_list("site_id", flat=True):
        waiting[site_id] += 1
    if not waiting:
        return []
    partners = PartnerProfile.objects.filter(site_id__in=list(waiting), status=PartnerStatus.ACTIVE).select_related(
        "site"
    )
    free: dict[int, int] = defaultdict(int)
    sites = {}
    for partner in partners:
        free[partner.site_id] += partner.free_slots
        sites[partner.site_id] = partner.site
    return [SlotAlert(sites[site_id], waiting[site_id], free[site_id]) for site_id in sorted(sites) if free[site_id]]


# --- The families-by-weeks table ----------------------------------------------------------------------------


@dataclass
class DoseRow:
    family: Family
    partner: PartnerProfile | None
    cells: list[WeekDose]


@dataclass
class WeekTotal(WeekDose):
    """All the families' hours in one week against the sum of their targets."""

    families: int = 0


def families_in_intervention(site_ids: frozenset[int] | None) -> QuerySet[Family]:
    """Families whose intervention has started, by site and number."""
    families = Family.objects.filter(intervention__isnull=False)
    if site_ids is not None:
        families = families.filter(site_id__in=site_ids)
    return families.order_by("site__code", "number")


def dose_rows(families: list[Family], shown: list[weeks.Week]) -> list[DoseRow]:
    """One row per family (with `intervention` selected), one cell per week: two queries."""
    target = target_quarters(TrialSettings.current())
    totals = week_quarters([f.pk for f in families], shown[0], shown[-1])
    partners = {
        a.family_id: a.partner
        for a in Assignment.objects.filter(family__in=families, ended_on__isnull=True).select_related("partner__user")
    }
    return [
        DoseRow(
            family,
            partners.get(family.pk),
            [_dose(family.pk, week, totals, family.intervention, target) for week in shown],
        )
        for family in families
    ]


def week_totals(families: QuerySet[Family], shown: list[weeks.Week]) -> list[WeekTotal]:
    """Per week, over all `families` (not one page): hours delivered against the prorated target. Two queries."""
    target = target_quarters(TrialSettings.current())
    delivered: dict[date, int] = defaultdict(int)
    for day, total in (
        ContactDay.objects.filter(family__in=families.values("pk"), day__range=(shown[0].start, shown[-1].end))
        .values_list("day")
        .annotate(total=Sum("quarters"))
        .order_by()
    ):
        delivered[weeks.week_start(day)] += total
    periods = list(
        InterventionPeriod.objects.filter(family__in=families.values("pk"), started_on__lte=shown[-1].end)
        .exclude(ended_on__lt=shown[0].start)
        .only("started_on", "ended_on")
    )
    totals = []
    for week in shown:
        expected = [expected_quarters(period, week, target) for period in periods]
        totals.append(
            WeekTotal(
                week=week,
                quarters=delivered.get(week.start, 0),
                expected_quarters=sum(expected),
                families=sum(1 for value in expected if value),
            )
        )
    return totals


# --- Set-based reads for the feasibility report ---------------------------------------------------------------


# Weeks are counted as whole weeks since a Monday long before any trial: (day - EPOCH_MONDAY) / 7 is a day's week
# number, plain integer arithmetic on dates (no time zone, no EXTRACT per row).
EPOCH_MONDAY = date(1970, 1, 5)


def family_week_counts(families: QuerySet[Family], *, before: date) -> list[tuple[int, int, int]]:
    """The intervention weeks of `families` that ended before `before`, grouped: [(days of the week within the
    intervention, quarter-hours logged in the week, number of family-weeks)]. One query that returns a few hundred
    rows however many families: the caller prorates the target for the days (`expected_quarters`'s rule) and
    judges each group. A week's quarter-hours are its daily totals summed, as on the families-by-weeks page."""
    cohort_sql, cohort_params = families.order_by().values("pk").query.sql_with_params()
    epoch, last = EPOCH_MONDAY, before - timedelta(days=1)
    # The cohort is named twice (no shared CTE) so that the planner sees the real tables on both sides of the join.
    sql = f"""
        SELECT week.days, COALESCE(logged.quarters, 0), COUNT(*)
        FROM (
            SELECT ip.family_id, w AS week,
                   LEAST(%s::date + 7 * w + 6, COALESCE(ip.ended_on, %s::date))
                   - GREATEST(%s::date + 7 * w, ip.started_on) + 1 AS days
            FROM {InterventionPeriod._meta.db_table} ip
            CROSS JOIN LATERAL generate_series(
                (ip.started_on - %s::date) / 7,
                LEAST((COALESCE(ip.ended_on, %s::date) - %s::date) / 7, (%s::date - %s::date) / 7 - 1)
            ) AS w
            WHERE ip.family_id IN ({cohort_sql}) AND ip.started_on < %s::date
        ) AS week
        LEFT JOIN (
            SELECT cd.family_id, (cd.day - %s::date) / 7 AS week, SUM(cd.quarters) AS quarters
            FROM {ContactDay._meta.db_table} cd
            WHERE cd.family_id IN ({cohort_sql}) AND cd.quarters > 0 AND cd.day < %s::date
            GROUP BY 1, 2
        ) AS logged ON logged.family_id = week.family_id AND logged.week = week.week
        GROUP BY 1, 2
    """  # noqa: S608 (the cohort is Django's own compiled query; every value is a parameter)
    params = [epoch, last, epoch, epoch, last, epoch, before, epoch, *cohort_params, before]
    params += [epoch, *cohort_params, before]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(days), int(quarters), int(n)) for days, quarters, n in cursor.fetchall()]


def contact_mix(families: QuerySet[Family]) -> list[tuple[str, list[str], int, int]]:
    """The contacts of `families` that are not voided, grouped by kind and by their list of the model's elements:
    [(kind, elements, contacts, quarter-hours)]. One pass over the contacts, a few dozen rows back; the caller
    counts a contact under each element it served."""
    return [
        (kind, list(elements or []), n, quarters or 0)
        for kind, elements, n, quarters in Contact.objects.filter(
            family__in=families.values("pk"), voided_at__isnull=True
        )
        .order_by()
        .values_list("kind", "elements")
        .annotate(n=Count("pk"), quarters=Sum("duration_quarters"))
    ]
