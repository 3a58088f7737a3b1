"""Real Celery workers on Redis run the beat's reminder job: two beats sending the daily sweep at the same moment to
two workers make each reminder once, and the delivery sends it once (the beat, a worker, the outbox, the mail).

The workers are processes of their own (tests/messaging.py: a private redis-server and SMTP server), as in
production; two worker threads inside the test process once hung on shutdown, after the test's checks had passed."""

import pytest
from django.conf import settings

from families.tests.factories import family_in_state
from followups.models import Assessment
from notifications.models import Message, MessageStatus
from reminders import services
from tests.messaging import celery_processes, redis_server, smtp_server, subject_of, wait_until  # noqa: F401
from trial.celery import app as celery_app
from trial.dates import today

pytestmark = [pytest.mark.celery_worker, pytest.mark.redis]

SWEEP = settings.CELERY_BEAT_SCHEDULE["reminders-daily"]


def test_two_beats_at_once_on_two_real_workers_make_and_send_each_reminder_once(
    celery_processes,  # noqa: F811
    smtp_server,  # noqa: F811
    oei,
    alice,
    carol,
):
    family = family_in_state("consented", site=oei, by=alice)
    opens = today()
    assessment = Assessment.objects.create(
        family=family, months=3, opens_on=opens, target_on=opens, closes_on=opens.replace(year=opens.year + 1)
    )
    for name in ("worker1", "worker2"):
        celery_processes.worker(name)

    # What two beats send at the same moment: the daily sweep twice.
    for _ in range(2):
        celery_app.send_task(SWEEP["task"], kwargs=SWEEP["kwargs"])

    about = f"assessment:{assessment.pk}"
    wait_until(lambda: Message.objects.filter(about=about).exists(), what=f"the reminder\n{celery_processes.logs()}")
    # The delivery sweep, twice at once as two beats send it (the minute's beat is not running here).
    for _ in range(2):
        celery_app.send_task("notifications.tasks.deliver_due")
    wait_until(
        lambda: Message.objects.filter(about=about, status=MessageStatus.SENT).exists(),
        what=f"the reminder to be made and sent\n{celery_processes.logs()}",
    )
    reminder = Message.objects.get(about=about)
    assert (reminder.kind, reminder.recipient, reminder.status) == (services.OPEN, carol, MessageStatus.SENT)
    sent = [message for message in smtp_server.handler.to(carol.email) if family.study_id in subject_of(message)]
    assert len(sent) == 1
