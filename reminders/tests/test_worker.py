"""Real Celery workers on Redis run the beat's reminder job: two beats sending the daily sweep at the same moment to
two workers make each reminder once, and the delivery sends it once (the beat, a worker, the outbox, the mail).

The workers run in threads of this process with their own database connections (`transactional_db`: they see
only what is committed), on a queue of this test's own (as tests/test_celery_worker.py)."""

import time
import uuid
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail

from conftest import require
from families.tests.factories import family_in_state
from followups.models import Assessment
from notifications.models import Message, MessageStatus
from reminders import services
from trial.celery import app as celery_app
from trial.dates import today

pytestmark = [pytest.mark.celery_worker, pytest.mark.redis]

SWEEP = settings.CELERY_BEAT_SCHEDULE["reminders-daily"]


@pytest.fixture
def queue(monkeypatch):
    name = f"test-reminders-{uuid.uuid4().hex}"
    queues = celery_app.amqp.queues
    monkeypatch.setattr(queues, "_consume_from", queues._consume_from)
    yield name
    queues.pop(name, None)


def test_two_beats_at_once_on_two_real_workers_make_and_send_each_reminder_once(
    transactional_db, queue, oei, alice, carol
):
    require(bool(settings.REDIS_URL), "needs Redis for the Celery worker test (set REDIS_URL)")
    family = family_in_state("consented", site=oei, by=alice)
    opens = today()
    assessment = Assessment.objects.create(
        family=family, months=3, opens_on=opens, target_on=opens, closes_on=opens + timedelta(days=42)
    )
    # Two worker threads stop one after the other when the block ends; on a busy machine the second may need more
    # than Celery's default 10 s to leave its broker loop (seen once in a full run), which is not what this tests.
    with (
        start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=60),
        start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=60),
    ):
        sweeps = [celery_app.send_task(SWEEP["task"], kwargs=SWEEP["kwargs"], queue=queue) for _ in range(2)]
        made = [result.get(timeout=60) for result in sweeps]
        # Delivery keeps no result (notifications.tasks): wait until the outbox says sent.
        for _ in range(2):
            celery_app.send_task("notifications.tasks.deliver_due", queue=queue)
        deadline = time.monotonic() + 60
        while Message.objects.filter(status__in=[MessageStatus.PENDING, MessageStatus.SENDING]).exists():
            assert time.monotonic() < deadline, "the workers did not deliver the reminder within 60 s"
            time.sleep(0.2)
    reminder = Message.objects.get(about=f"assessment:{assessment.pk}")
    assert (reminder.kind, reminder.recipient, reminder.status) == (services.OPEN, carol, MessageStatus.SENT)
    assert sum(made) >= 1
    assert [message.to for message in mail.outbox if family.study_id in message.subject] == [["carol@example.org"]]
