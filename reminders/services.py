"""The reminders: one sweep that writes every reminder due today into the outbox (notifications.Message), and the
checks made again when each is sent.

The sweep reads in bulk and writes with one bulk insert per kind, so its number of queries does not depend on the
number of families (only on the number of messages, in inserts of 1,000 rows). Each reminder is due on the day
its condition began (a window's opening, the 14th day of a pending consent, ...), and a message is unique on
what it is about, its kind, its recipient and that day: a sweep run twice, two beats or two workers never make a
reminder twice, and a sweep on a later day never repeats it. A sweep that did not run is caught up for
CATCH_UP_DAYS (reminders/windows.py). Every date is the date in Europe/Oslo (trial.dates.today).

Reminders that reveal the arm (a Family Partner's work exists only in the intervention arm) go only to users who
are not blinded (trial.roles.is_blinded), checked when made and again when sent. Texts carry study IDs, site
codes, dates and numbers, never names (reminders/kinds.py).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from families.models import Family, FamilyStatus
from followups.models import Assessment, AssessmentStatus
from followups.services import reminder_about
from notifications.models import Message
from notifications.services import messages_queue_many
from randomization.models import Allocation
from randomization.selectors import intervention_families
from reminders import windows
from reminders.windows import CATCH_UP_DAYS
from trial.dates import add_months, today
from trial.models import TrialSettings
from trial.roles import Role, is_blinded
from visits import weeks
from visits.models import Assignment, ContactDay, InterventionPeriod, PartnerProfile
from visits.selectors import expected_quarters, target_quarters

# The kinds of reminder (notifications.kinds registers them with their words: reminders/kinds.py).
OPENS_SOON = windows.OPENS_SOON
OPEN = windows.OPEN
CLOSING = windows.CLOSING
MISSED = windows.MISSED
ASSESSMENT_KINDS = windows.ORDER
CONSENT_PENDING = "consent_pending"
WAITING_FOR_PARTNER = "waiting_for_partner"
INTERVENTION_MILESTONE = "intervention_milestone"
PARTNER_WEEK = "partner_week"
NEW_FAMILY = "partner_new_family"
RANDOMISATION_RECEIPT = "randomisation_receipt"
# Families whose assessments are reminded: consented (the baseline) and randomised. Not withdrawn, nor any state
# added later (lost to follow-up, say), unless it is added here.
FOLLOWED_UP = (FamilyStatus.CONSENTED, FamilyStatus.RANDOMISED)
DAILY_KINDS = (*ASSESSMENT_KINDS, CONSENT_PENDING, WAITING_FOR_PARTNER, INTERVENTION_MILESTONE)
WEEKLY_KINDS = (PARTNER_WEEK,)


@dataclass
class SweepResult:
    """What one sweep made: new messages per kind (those that existed already are not counted)."""

    today: date
    made: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.made.values())


def sweep(on: date | None = None, *, daily: bool = True, weekly: bool = True) -> SweepResult:
    """Write every reminder due on `on` (default: today in Europe/Oslo) into the outbox: the daily kinds and the
    Family Partners' weekly summary (due on the Monday of `on`'s week, so that a sweep later in the week makes it
    if Monday's did not). Safe to run any number of times, at once too."""
    on = on or today()
    result = SweepResult(on)
    builders = []
    if daily:
        builders += [_assessment_reminders, _consent_reminders, _waiting_reminders, _milestone_reminders]
    if weekly:
        builders.append(_partner_week_reminders)
    trial_settings = TrialSettings.current()
    for build in builders:
        # One transaction per kind of reminder: the reads and the insert see one state of the trial.
        with transaction.atomic():
            rows = build(on, trial_settings)
            for kind, count in _queue_new(rows, on).items():
                result.made[kind] = result.made.get(kind, 0) + count
    return result


def _queue_new(rows: list[Message], on: date) -> dict[str, int]:
    """Insert the rows (those already there are left alone: the unique key); returns the new ones per kind.
    One query reads which exist, so that the report says what this sweep made and the insert skips the rest;
    a concurrent sweep may still insert the same rows first, and the unique key then keeps one."""
    if not rows:
        return {}
    # By the unique key's own index (it leads with `about`).
    existing = set(
        Message.objects.filter(
            about__in={row.about for row in rows},
            kind__in={row.kind for row in rows},
            due_on__range=(min(row.due_on for row in rows), on),
        ).values_list("about", "kind", "recipient_id", "due_on")
    )
    new = [row for row in rows if (row.about, row.kind, row.recipient_id, row.due_on) not in existing]
    # In the unique key's order: two sweeps inserting the same rows at once then wait for each other in one
    # order (the second's ON CONFLICT DO NOTHING waits for the first to commit), never crosswise (a deadlock).
    new.sort(key=lambda row: (row.about, row.kind, row.recipient_id, row.due_on))
    messages_queue_many(new)
    made: dict[str, int] = defaultdict(int)
    for row in new:
        made[row.kind] += 1
    return dict(made)


# --- Who receives them --------------------------------------------------------------------------------------


def _members_by_site(role: str, *, unblinded_only: bool) -> dict[int, list[int]]:
    """{site id: [user ids]} of the active accounts holding `role` at each site: one query. With
    `unblinded_only`, without anyone blinded (an outcome assessor, whatever their other roles)."""
    users = AuthUser.objects.filter(is_active=True, groups__name=role, trial_sites__isnull=False)
    if unblinded_only:
        users = users.exclude(groups__name=Role.OUTCOME_ASSESSOR)
    members: dict[int, list[int]] = defaultdict(list)
    for site_id, user_id in users.values_list("trial_sites", "pk").distinct().order_by("trial_sites", "pk"):
        members[site_id].append(user_id)
    return members


def _holds_role_at(user: AuthUser, site_id: int | None, role: str) -> bool:
    return (
        user.is_active
        and user.groups.filter(name=role).exists()
        and (site_id is None or user.trial_sites.filter(pk=site_id).exists())
    )


def _about_pk(message: Message) -> int:
    """The primary key in "<model>:<pk>"; 0 (no row) for anything else."""
    try:
        return int(message.about.split(":", 1)[1])
    except (IndexError, ValueError):
        return 0


# --- Assessments: to the site's outcome assessors ------------------------------------------------------------


def _assessment_reminders(on: date, trial_settings: TrialSettings) -> list[Message]:
    opens, closes = windows.candidate_range(
        on, opens_days=trial_settings.reminder_window_opens_days, closes_days=trial_settings.reminder_window_closes_days
    )
    assessments = Assessment.objects.filter(
        Q(opens_on__range=opens) | Q(closes_on__range=closes),
        status=AssessmentStatus.SCHEDULED,
        family__status__in=FOLLOWED_UP,
    ).values_list(
        "pk",
        "months",
        "opens_on",
        "target_on",
        "closes_on",
        "family__study_id",
        "family__site_id",
        "family__site__code",
    )
    assessors = _members_by_site(Role.OUTCOME_ASSESSOR, unblinded_only=False)
    rows = []
    for pk, months, opens_on, target_on, closes_on, study_id, site_id, site_code in assessments:
        stage = windows.stage_on(
            on,
            opens_on,
            closes_on,
            opens_days=trial_settings.reminder_window_opens_days,
            closes_days=trial_settings.reminder_window_closes_days,
        )
        if stage is None:
            continue
        context = {
            "study_id": study_id,
            "site": site_code,
            "months": months,
            "opens_on": opens_on.isoformat(),
            "target_on": target_on.isoformat(),
            "closes_on": closes_on.isoformat() if closes_on else None,
        }
        rows += [
            Message(
                kind=stage.kind,
                about=reminder_about(pk),
                recipient_id=user_id,
                due_on=stage.day,
                site_id=site_id,
                context=context,
            )
            for user_id in assessors.get(site_id, [])
        ]
    return rows


def assessment_still_due(message: Message) -> bool:
    """Not recorded nor stopped, the family not withdrawn, the recipient still an assessor of its site, and the
    window still at the stage and day the reminder was made for (a window moved since calls for its own)."""
    assessment = Assessment.objects.select_related("family").filter(pk=_about_pk(message)).first()
    if assessment is None or assessment.status != AssessmentStatus.SCHEDULED:
        return False
    if assessment.family.status not in FOLLOWED_UP:
        return False
    if not _holds_role_at(message.recipient, assessment.family.site_id, Role.OUTCOME_ASSESSOR):
        return False
    trial_settings = TrialSettings.current()
    stage = windows.stage_on(
        today(),
        assessment.opens_on,
        assessment.closes_on,
        opens_days=trial_settings.reminder_window_opens_days,
        closes_days=trial_settings.reminder_window_closes_days,
    )
    return stage is not None and stage.kind == message.kind and stage.day == message.due_on


# --- Consents pending: to the site's researchers -------------------------------------------------------------


def _consent_reminders(on: date, trial_settings: TrialSettings) -> list[Message]:
    days = trial_settings.reminder_consent_pending_days
    latest = on - timedelta(days=days)
    families = (
        Family.objects.filter(status=FamilyStatus.ELIGIBLE)
        .annotate(screened_on=Max("screenings__screened_on"))
        .filter(screened_on__range=(latest - timedelta(days=CATCH_UP_DAYS), latest))
        .values_list("pk", "study_id", "site_id", "site__code", "screened_on")
    )
    researchers = _members_by_site(Role.RESEARCHER, unblinded_only=False)
    rows = []
    for pk, study_id, site_id, site_code, screened_on in families:
        context = {"study_id": study_id, "site": site_code, "screened_on": screened_on.isoformat(), "days": days}
        due_on = screened_on + timedelta(days=days)
        rows += [
            Message(
                kind=CONSENT_PENDING,
                about=f"family:{pk}",
                recipient_id=user_id,
                due_on=due_on,
                site_id=site_id,
                context=context,
            )
            for user_id in researchers.get(site_id, [])
        ]
    return rows


def consent_still_due(message: Message) -> bool:
    """Still eligible without a decision, screened last on the day the reminder counted from (a new screening
    counts again), and the recipient still a researcher of the site."""
    family = Family.objects.filter(pk=_about_pk(message)).annotate(screened_on=Max("screenings__screened_on")).first()
    if family is None or family.status != FamilyStatus.ELIGIBLE or family.screened_on is None:
        return False
    if family.screened_on + timedelta(days=message.context.get("days", 0)) != message.due_on:
        return False
    return _holds_role_at(message.recipient, family.site_id, Role.RESEARCHER)


# --- Intervention families waiting for a Family Partner: to the site's researchers ---------------------------


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _waiting_reminders(on: date, trial_settings: TrialSettings) -> list[Message]:
    # Waiting "more than N days": the reminder is due on day N + 1 after the randomisation (a local date).
    after = trial_settings.reminder_waiting_days + 1
    latest = on - timedelta(days=after)
    families = (
        intervention_families(Family.objects.filter(status=FamilyStatus.RANDOMISED, intervention__isnull=True))
        .filter(
            allocation__randomised_at__gte=_local_midnight(latest - timedelta(days=CATCH_UP_DAYS)),
            allocation__randomised_at__lt=_local_midnight(latest + timedelta(days=1)),
        )
        .values_list("pk", "study_id", "site_id", "site__code", "allocation__randomised_at")
    )
    researchers = _members_by_site(Role.RESEARCHER, unblinded_only=True)
    rows = []
    for pk, study_id, site_id, site_code, randomised_at in families:
        randomised_on = today(randomised_at)
        context = {
            "study_id": study_id,
            "site": site_code,
            "randomised_on": randomised_on.isoformat(),
            "days": after - 1,
        }
        rows += [
            Message(
                kind=WAITING_FOR_PARTNER,
                about=f"family:{pk}",
                recipient_id=user_id,
                due_on=randomised_on + timedelta(days=after),
                site_id=site_id,
                context=context,
            )
            for user_id in researchers.get(site_id, [])
        ]
    return rows


def waiting_still_due(message: Message) -> bool:
    """The family still waits (randomised to the intervention, never assigned, not withdrawn) and the recipient is
    still an unblinded researcher of its site."""
    family = intervention_families(
        Family.objects.filter(pk=_about_pk(message), status=FamilyStatus.RANDOMISED, intervention__isnull=True)
    ).first()
    return (
        family is not None
        and not is_blinded(message.recipient)
        and _holds_role_at(message.recipient, family.site_id, Role.RESEARCHER)
    )


# --- An intervention reaching its minimum, expected and maximum length: researchers and the partner ----------


def milestone_months(trial_settings: TrialSettings) -> list[int]:
    """3, 12 and 18 months by default: the trial settings' minimum, expected and maximum intervention lengths."""
    return sorted(
        {
            trial_settings.intervention_min_months,
            trial_settings.intervention_expected_months,
            trial_settings.intervention_max_months,
        }
    )


def _milestone_reminders(on: date, trial_settings: TrialSettings) -> list[Message]:
    earliest = on - timedelta(days=CATCH_UP_DAYS)
    started = Q()
    for months in milestone_months(trial_settings):
        # A superset (month ends): add_months below decides.
        started |= Q(started_on__range=(add_months(earliest, -months) - timedelta(days=3), add_months(on, -months)))
    periods = list(
        InterventionPeriod.objects.filter(
            started, ended_on__isnull=True, family__status=FamilyStatus.RANDOMISED
        ).values_list("family_id", "started_on", "family__study_id", "family__site_id", "family__site__code")
    )
    if not periods:
        return []
    partners = dict(
        Assignment.objects.filter(family_id__in=[period[0] for period in periods], ended_on__isnull=True)
        .exclude(partner__user__groups__name=Role.OUTCOME_ASSESSOR)
        .filter(partner__user__is_active=True)
        .values_list("family_id", "partner__user_id")
    )
    researchers = _members_by_site(Role.RESEARCHER, unblinded_only=True)
    rows = []
    for family_id, started_on, study_id, site_id, site_code in periods:
        for months in milestone_months(trial_settings):
            day = add_months(started_on, months)
            if not earliest <= day <= on:
                continue
            context = {"study_id": study_id, "site": site_code, "months": months, "started_on": started_on.isoformat()}
            recipients = [(user_id, "family") for user_id in researchers.get(site_id, [])]
            if family_id in partners:
                recipients.append((partners[family_id], "partner"))
            rows += [
                Message(
                    kind=INTERVENTION_MILESTONE,
                    about=f"family:{family_id}",
                    recipient_id=user_id,
                    due_on=day,
                    site_id=site_id,
                    context={**context, "page": page},
                )
                for user_id, page in recipients
            ]
    return rows


def milestone_still_due(message: Message) -> bool:
    """The intervention still runs (not ended, the family not withdrawn), the milestone's day still follows from
    its start, and the recipient is still an unblinded researcher of the site or the family's partner now."""
    period = InterventionPeriod.objects.select_related("family").filter(family_id=_about_pk(message)).first()
    if period is None or period.ended_on is not None or period.family.status != FamilyStatus.RANDOMISED:
        return False
    if add_months(period.started_on, message.context.get("months", 0)) != message.due_on:
        return False
    if is_blinded(message.recipient):
        return False
    if message.context.get("page") == "partner":
        return Assignment.objects.filter(
            family_id=period.family_id, ended_on__isnull=True, partner__user=message.recipient
        ).exists()
    return _holds_role_at(message.recipient, period.family.site_id, Role.RESEARCHER)


# --- The Family Partner's week: families with no contact or under target last week ---------------------------


def _partner_week_reminders(on: date, trial_settings: TrialSettings) -> list[Message]:
    this_week = weeks.week_of(on)
    last_week = this_week.shifted(-1)
    assignments = list(
        Assignment.objects.filter(ended_on__isnull=True, partner__user__is_active=True)
        .exclude(partner__user__groups__name=Role.OUTCOME_ASSESSOR)
        .select_related("family__site", "family__intervention", "partner__site")
        .order_by("partner_id", "family__site__code", "family__number")
    )
    totals = _week_totals([a.family_id for a in assignments], last_week)
    target = target_quarters(trial_settings)
    by_partner: dict[PartnerProfile, list[dict]] = defaultdict(list)
    for assignment in assignments:
        period = getattr(assignment.family, "intervention", None)
        expected = expected_quarters(period, last_week, target)
        quarters = totals.get(assignment.family_id, 0)
        if expected and quarters < expected:
            by_partner[assignment.partner].append(
                {"study_id": assignment.family.study_id, "quarters": quarters, "expected": expected}
            )
    return [
        Message(
            kind=PARTNER_WEEK,
            about=f"partner:{profile.pk}",
            recipient_id=profile.user_id,
            due_on=this_week.start,
            site_id=profile.site_id,
            context={"week": last_week.code, "site": profile.site.code, "families": families},
        )
        for profile, families in by_partner.items()
    ]


def _week_totals(family_ids: Iterable[int], week: weeks.Week) -> dict[int, int]:
    totals: dict[int, int] = defaultdict(int)
    for family_id, quarters in ContactDay.objects.filter(
        family_id__in=list(family_ids), day__range=(week.start, week.end)
    ).values_list("family_id", "quarters"):
        totals[family_id] += quarters
    return totals


def partner_week_still_due(message: Message) -> bool:
    """The recipient is still that Family Partner (unblinded) and still has one of the families named."""
    if is_blinded(message.recipient) or not message.recipient.is_active:
        return False
    study_ids = [row["study_id"] for row in message.context.get("families", [])]
    return Assignment.objects.filter(
        partner_id=_about_pk(message),
        partner__user=message.recipient,
        ended_on__isnull=True,
        family__study_id__in=study_ids,
    ).exists()


# --- Events: a new family for a Family Partner, a randomisation receipt ---------------------------------------


def new_family_still_due(message: Message) -> bool:
    """The assignment still runs and the recipient is (still) its partner, unblinded."""
    return (
        not is_blinded(message.recipient)
        and Assignment.objects.filter(
            pk=_about_pk(message), ended_on__isnull=True, partner__user=message.recipient
        ).exists()
    )


def receipt_still_due(message: Message) -> bool:
    """A receipt that names the arm is never sent to someone who has become blinded since it was written."""
    return "arm" not in message.context or not is_blinded(message.recipient)


def receipt_recipients(allocation: Allocation, randomised_by: AuthUser) -> list[AuthUser]:
    """The researcher who randomised and every principal investigator (active accounts), each once."""
    people = {randomised_by.pk: randomised_by}
    for pi in AuthUser.objects.filter(is_active=True, groups__name=Role.PRINCIPAL_INVESTIGATOR).order_by("pk"):
        people.setdefault(pi.pk, pi)
    return list(people.values())
