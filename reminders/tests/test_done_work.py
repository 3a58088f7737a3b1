"""When the work a reminder is about is done, the reminder leaves the inbox, and one not yet sent is never sent."""

import uuid
from datetime import timedelta

from families.services import family_withdraw
from followups.models import Assessment
from followups.tests.factories import record
from notifications.models import Message, MessageStatus
from notifications.selectors import inbox_of, unread_count
from notifications.services import message_deliver
from reminders import services
from reminders.tests.factories import randomised
from trial.dates import today


def overdue_three_months(family) -> Assessment:
    """The family's 3-month assessment, its window closed yesterday with nothing recorded."""
    assessment = Assessment.objects.get(family=family, months=3)
    closes_on = today() - timedelta(days=1)
    Assessment.objects.filter(pk=assessment.pk).update(
        opens_on=closes_on - timedelta(days=42), target_on=closes_on - timedelta(days=28), closes_on=closes_on
    )
    return Assessment.objects.get(pk=assessment.pk)


def test_recording_an_overdue_assessment_takes_its_reminder_out_of_the_inbox(oei, alice, carol):
    assessment = overdue_three_months(randomised(oei, researcher=alice))
    services.sweep(today())
    reminder = Message.objects.get(about=f"assessment:{assessment.pk}", recipient=carol)
    message_deliver(reminder.pk)
    assert list(inbox_of(carol)) == [reminder]
    assert unread_count(carol) == 1

    record(assessment, by=carol, done_on=today(), confirm_outside_window=True)

    assert list(inbox_of(carol)) == []
    assert unread_count(carol) == 0
    reminder.refresh_from_db()
    assert reminder.status == MessageStatus.SENT  # the send log keeps what was sent
    assert reminder.resolved_at is not None


def test_a_reminder_not_yet_sent_is_cancelled_when_the_assessment_is_recorded(oei, alice, carol):
    assessment = overdue_three_months(randomised(oei, researcher=alice))
    services.sweep(today())
    reminder = Message.objects.get(about=f"assessment:{assessment.pk}", recipient=carol)

    record(assessment, by=carol, done_on=today(), confirm_outside_window=True)

    reminder.refresh_from_db()
    assert (reminder.status, reminder.resolved_at is not None) == (MessageStatus.CANCELLED, True)
    assert message_deliver(reminder.pk) == "not claimed"


def test_a_withdrawal_takes_the_reminders_of_the_stopped_assessments_out_of_the_inbox(oei, alice, carol):
    family = randomised(oei, researcher=alice)
    assessment = Assessment.objects.get(family=family, months=3)
    opens_on = today()
    Assessment.objects.filter(pk=assessment.pk).update(
        opens_on=opens_on, target_on=opens_on + timedelta(days=14), closes_on=opens_on + timedelta(days=42)
    )
    services.sweep(today())
    reminder = Message.objects.get(about=f"assessment:{assessment.pk}", recipient=carol)
    message_deliver(reminder.pk)
    assert list(inbox_of(carol)) == [reminder]

    family_withdraw(
        family=family,
        withdrawn_on=today(),
        reason="family_request",
        details="",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )

    assert list(inbox_of(carol)) == []
