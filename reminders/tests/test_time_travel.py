"""Time travel (time-machine) through 18 months of a family's life, and a second family that withdraws.

Every day at 06:00 in Oslo the daily and the weekly sweep run and the outbox is delivered in-process, as the beat
and the worker would. The families live through consent, baseline, randomisation, a Family Partner, weekly
contacts, assessments recorded or left, a schedule moved after its reminder was made, and a withdrawal; the
clock crosses the daylight-saving changes of March and October 2027 and of March 2028. At the end every message
about the two families is compared with the list written out below by hand: each reminder once, on its local day,
none after the work was done or the family withdrew. Window edges are checked at 23:59 and 00:00 Oslo time, when
the date in UTC is still the day before.
"""

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.core import mail
from django.utils import timezone

from families import services as family_services
from families.tests.factories import consent_family, register_family, screen_family
from followups.models import Assessment, AssessmentStatus
from notifications.models import Message, MessageStatus
from notifications.tasks import deliver_due
from randomization import services as randomisation
from randomization.models import Allocation, Arm
from reminders import services
from reminders.services import (
    CLOSING,
    CONSENT_PENDING,
    INTERVENTION_MILESTONE,
    MISSED,
    NEW_FAMILY,
    OPEN,
    OPENS_SOON,
    PARTNER_WEEK,
    RANDOMISATION_RECEIPT,
    WAITING_FOR_PARTNER,
)
from reminders.tests.factories import complete_baseline
from trial.audit import save_as
from visits import services as visit_services
from visits import weeks
from visits.models import Assignment
from visits.tests.factories import _list_for, log_contact, partner

OSLO = ZoneInfo("Europe/Oslo")
FIRST_DAY, LAST_DAY = date(2026, 12, 1), date(2028, 8, 20)


def at(day: date, hour: int = 6, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=OSLO)


def record(family, months: int, on: date) -> None:
    """The assessment recorded as completed (the row as the recording service leaves it)."""
    assessment = Assessment.objects.get(family=family, months=months)
    assessment.status, assessment.done_on, assessment.mode = AssessmentStatus.COMPLETED, on, "home_visit"
    save_as(assessment, assessment.family.registered_by)


class Life:
    """The families and what happens to them, day by day (after the morning's sweep, at 10:00)."""

    def __init__(self, oei, alice, fiona):
        self.oei, self.alice, self.fiona = oei, alice, fiona
        self.pair1: list = []
        self.pair2: list = []
        self.a = self.b = None  # A: the intervention family of the first pair; B: the first of the second pair

    def morning_extra(self, day: date) -> None:
        """Between the morning's sweep and its delivery: the 12-month window is moved a week later on the day its
        first reminder was made (the schedule corrected), so that reminder is no longer due when it is sent."""
        if day == date(2027, 12, 5):
            assessment = Assessment.objects.get(family=self.a, months=12)
            assessment.opens_on += timedelta(days=7)
            assessment.target_on += timedelta(days=7)
            assessment.closes_on += timedelta(days=7)
            save_as(assessment, self.alice, reason="The target date was entered a week early")

    def events(self, day: date) -> None:
        alice, oei = self.alice, self.oei
        if day == date(2026, 12, 1):
            for _ in range(2):
                family = register_family(site=oei, by=alice, referral_days_ago=3)
                screen_family(family, by=alice, on_days_ago=0)
                self.pair1.append(family)
        elif day == date(2026, 12, 18):
            for family in self.pair1:
                consent_family(family, by=alice, on_days_ago=0)
        elif day == date(2027, 1, 8):
            for family in self.pair1:
                complete_baseline(family, day)
        elif day == date(2027, 1, 11):
            _list_for(oei)  # blocks of two: of two families randomised in a row from the start, one each arm
            for family in self.pair1:
                randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
            self.a = next(f for f in self.pair1 if Allocation.objects.get(family=f).arm == Arm.INTERVENTION)
        elif day == date(2027, 1, 20):
            visit_services.family_assign(family=self.a, partner=self.fiona, started_on=day, assigned_by=alice)
        elif day == date(2027, 4, 14):
            record(self.a, 3, day)
        elif day == date(2027, 4, 20):
            for _ in range(2):
                family = register_family(site=oei, by=alice, referral_days_ago=3)
                screen_family(family, by=alice, on_days_ago=0)
                self.pair2.append(family)
        elif day == date(2027, 4, 27):
            for family in self.pair2:
                consent_family(family, by=alice, on_days_ago=0)
        elif day == date(2027, 5, 20):
            for family in self.pair2:
                complete_baseline(family, day)
        elif day == date(2027, 5, 30):
            for family in self.pair2:
                randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
            self.b = self.pair2[0]
        elif day == date(2027, 11, 10):
            family_services.family_withdraw(
                family=self.b,
                withdrawn_on=day,
                reason="family_request",
                data_may_be_kept=True,
                recorded_by=alice,
                token=uuid.uuid4(),
            )
        elif day == date(2028, 1, 10):
            record(self.a, 12, day)
        elif day == date(2028, 7, 20):
            record(self.a, 18, day)
            visit_services.intervention_end(family=self.a, ended_on=day, reason="goals_reached", ended_by=alice)
        # Every Wednesday of the intervention the partner logs a contact: the target (6 h) in even ISO weeks, an
        # hour in odd ones.
        if self.a is not None and day.weekday() == 2 and date(2027, 1, 20) <= day < date(2028, 7, 20):
            quarters = 24 if weeks.week_of(day).number % 2 == 0 else 4
            log_contact(self.a, by=self.fiona.user, contact_date=day, duration_quarters=quarters)


def expected_messages(life: Life, alice, carol, paula, fiona) -> set[tuple]:
    a, b = life.a, life.b
    assessment = {(f.pk, m): Assessment.objects.get(family=f, months=m).pk for f in (a, b) for m in (0, 3, 6, 12, 18)}
    allocation = {f.pk: Allocation.objects.get(family=f).pk for f in (a, b)}
    assignment = Assignment.objects.get(family=a).pk
    expected = {
        # A: consent pending 14 days after its screening; the baseline from the consent (caught up the next
        # morning: the consent was recorded after the day's sweep).
        (CONSENT_PENDING, f"family:{a.pk}", alice, date(2026, 12, 15)),
        (OPEN, f"assessment:{assessment[a.pk, 0]}", carol, date(2026, 12, 18)),
        (RANDOMISATION_RECEIPT, f"allocation:{allocation[a.pk]}", alice, date(2027, 1, 11)),
        (RANDOMISATION_RECEIPT, f"allocation:{allocation[a.pk]}", paula, date(2027, 1, 11)),
        # Waiting more than 7 days; a partner from the 20th.
        (WAITING_FOR_PARTNER, f"family:{a.pk}", alice, date(2027, 1, 19)),
        (NEW_FAMILY, f"assignment:{assignment}", fiona, date(2027, 1, 20)),
        # 3 months: opens on the Sunday clocks go forward; recorded on 14 April, so nothing closes.
        (OPENS_SOON, f"assessment:{assessment[a.pk, 3]}", carol, date(2027, 3, 21)),
        (OPEN, f"assessment:{assessment[a.pk, 3]}", carol, date(2027, 3, 28)),
        # 6 months: never recorded.
        (OPENS_SOON, f"assessment:{assessment[a.pk, 6]}", carol, date(2027, 6, 4)),
        (OPEN, f"assessment:{assessment[a.pk, 6]}", carol, date(2027, 6, 11)),
        (CLOSING, f"assessment:{assessment[a.pk, 6]}", carol, date(2027, 8, 7)),
        (MISSED, f"assessment:{assessment[a.pk, 6]}", carol, date(2027, 8, 11)),
        # 12 months: its first reminder made, then the window moved a week (cancelled), then the new dates.
        (OPENS_SOON, f"assessment:{assessment[a.pk, 12]}", carol, date(2027, 12, 5)),
        (OPENS_SOON, f"assessment:{assessment[a.pk, 12]}", carol, date(2027, 12, 12)),
        (OPEN, f"assessment:{assessment[a.pk, 12]}", carol, date(2027, 12, 19)),
        # 18 months: recorded on 20 July.
        (OPENS_SOON, f"assessment:{assessment[a.pk, 18]}", carol, date(2028, 6, 4)),
        (OPEN, f"assessment:{assessment[a.pk, 18]}", carol, date(2028, 6, 11)),
        # B: consented within 14 days; randomised on 30 May 2027, withdrawn on 10 November.
        (OPEN, f"assessment:{assessment[b.pk, 0]}", carol, date(2027, 4, 27)),
        (RANDOMISATION_RECEIPT, f"allocation:{allocation[b.pk]}", alice, date(2027, 5, 30)),
        (RANDOMISATION_RECEIPT, f"allocation:{allocation[b.pk]}", paula, date(2027, 5, 30)),
        (OPENS_SOON, f"assessment:{assessment[b.pk, 3]}", carol, date(2027, 8, 9)),
        (OPEN, f"assessment:{assessment[b.pk, 3]}", carol, date(2027, 8, 16)),
        (CLOSING, f"assessment:{assessment[b.pk, 3]}", carol, date(2027, 9, 24)),
        (MISSED, f"assessment:{assessment[b.pk, 3]}", carol, date(2027, 9, 28)),
        # 6 months: opens on the Sunday clocks go back; stopped by the withdrawal before it closes.
        (OPENS_SOON, f"assessment:{assessment[b.pk, 6]}", carol, date(2027, 10, 24)),
        (OPEN, f"assessment:{assessment[b.pk, 6]}", carol, date(2027, 10, 31)),
    }
    if Allocation.objects.get(family=b).arm == Arm.INTERVENTION:
        expected.add((WAITING_FOR_PARTNER, f"family:{b.pk}", alice, date(2027, 6, 7)))
    # The intervention (from 20 January 2027) reaches 3, 12 and 18 months: researchers and the partner.
    for day in (date(2027, 4, 20), date(2028, 1, 20), date(2028, 7, 20)):
        expected |= {(INTERVENTION_MILESTONE, f"family:{a.pk}", who, day) for who in (alice, fiona.user)}
    # Every Monday after a week under target (the odd ISO weeks, from the first partial one) until it ended.
    monday = date(2027, 1, 25)
    while monday <= date(2028, 7, 17):
        if weeks.week_of(monday - timedelta(days=7)).number % 2 == 1:
            expected.add((PARTNER_WEEK, f"partner:{fiona.pk}", fiona.user, monday))
        monday += timedelta(days=7)
    return expected


def edge_reminders(life: Life, day: date) -> int:
    """The opening reminders due on `day` of A's 3-month window (28 March 2027) and B's 6-month one (31 October)."""
    family, months = (life.a, 3) if day.month == 3 else (life.b, 6)
    about = f"assessment:{Assessment.objects.get(family=family, months=months).pk}"
    return Message.objects.filter(kind=OPEN, due_on=day, about=about).count()


def test_eighteen_months_of_reminders_each_once_on_its_local_day(oei, alice, carol, paula):
    fiona = partner(oei, "fiona", email="fiona@example.org")
    life = Life(oei, alice, fiona)
    edges_checked = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day in (date(2027, 3, 28), date(2027, 10, 31)):
            # The window opens at 00:00 Oslo time: not at 23:59 the evening before, already at 00:00 (when UTC is
            # still on the day before), whichever way the clocks turn that night.
            with time_machine.travel(at(day - timedelta(days=1), 23, 59, 30), tick=False):
                services.sweep()
                edges_checked.append(edge_reminders(life, day))
            with time_machine.travel(at(day, 0, 0, 30), tick=False):
                assert timezone.now().astimezone(ZoneInfo("UTC")).date() == day - timedelta(days=1)
                services.sweep()
                deliver_due()
                edges_checked.append(edge_reminders(life, day))
        with time_machine.travel(at(day), tick=False):
            services.sweep(daily=True, weekly=True)
            services.sweep()  # a second beat at the same minute
            life.morning_extra(day)
            deliver_due()
        with time_machine.travel(at(day, 10), tick=False):
            life.events(day)
            deliver_due()
        day += timedelta(days=1)

    assert edges_checked == [0, 1, 0, 1]
    a, b = life.a, life.b
    abouts = {f"family:{a.pk}", f"family:{b.pk}", f"partner:{fiona.pk}"}
    abouts |= {f"assessment:{pk}" for pk in Assessment.objects.filter(family__in=[a, b]).values_list("pk", flat=True)}
    abouts |= {f"allocation:{pk}" for pk in Allocation.objects.filter(family__in=[a, b]).values_list("pk", flat=True)}
    abouts |= {f"assignment:{pk}" for pk in Assignment.objects.filter(family=a).values_list("pk", flat=True)}
    messages = list(Message.objects.filter(about__in=abouts).select_related("recipient"))
    made = {(m.kind, m.about, m.recipient, m.due_on) for m in messages}
    expected = expected_messages(life, alice, carol, paula, fiona)
    expected = {(kind, about, getattr(who, "user", who), due) for kind, about, who, due in expected}
    assert sorted(made - expected, key=str) == [] and sorted(expected - made, key=str) == []
    assert len(messages) == len(made)

    moved = Assessment.objects.get(family=a, months=12).pk
    for message in messages:
        cancelled = (message.kind, message.about, message.due_on) == (
            OPENS_SOON,
            f"assessment:{moved}",
            date(2027, 12, 5),
        )
        assert message.status == (MessageStatus.CANCELLED if cancelled else MessageStatus.SENT), message
        made_on = timezone.localtime(message.created_at).date()
        late = message.kind == OPEN and message.context.get("months") == 0  # the baseline, caught up next morning
        assert made_on == message.due_on + timedelta(days=1 if late else 0), message
    # One e-mail per message sent, whatever the message was about (the other families of the pairs too).
    assert len(mail.outbox) == Message.objects.filter(status=MessageStatus.SENT).count()
    assert Message.objects.exclude(status__in=[MessageStatus.SENT, MessageStatus.CANCELLED]).count() == 0
