"""Delivering the outbox: written with the change or not at all, claimed by one worker, checked again when sent,
retried with a backoff until it is marked failed, and sent again at most once after a worker died mid-send.
The same with real processes failing: tests/test_message_faults.py."""

import functools
import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from conftest import require
from families.tests.test_concurrency import run_together
from notifications import services, tasks
from notifications.kinds import Kind, register_kind
from notifications.models import Language, Message, MessageStatus, Preference
from notifications.services import (
    ABANDONED_TWICE,
    NO_ADDRESS,
    message_cancel,
    message_deliver,
    message_queue,
    messages_due_ids,
)
from tests.test_production_settings import SETTINGS_VARIABLES
from trial.roles import Role
from trial.tests.factories import UserFactory

TEST_KIND = "tests.delivery"
register_kind(
    Kind(
        code=TEST_KIND,
        label="A test message",
        subject=lambda context: f"Reminder for {context['study_id']}",
        body=lambda context: f"{context['study_id']} is due.",
        still_due=lambda message: not message.context.get("done"),
    )
)


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail server is down")


class CountingBackend(BaseEmailBackend):
    """Counts sends across threads (the concurrency tests)."""

    lock = threading.Lock()
    sent: list[str] = []

    def send_messages(self, email_messages):
        with self.lock:
            self.sent.extend(message.subject for message in email_messages)
        return len(email_messages)


@pytest.fixture
def dina(db):
    user = UserFactory(username="dina", roles=[Role.DATA_MANAGER], email="dina@example.org")
    Preference.objects.create(user=user, language=Language.ENGLISH)
    return user


@pytest.fixture
def fast(settings):
    settings.MESSAGE_CLAIM_LEASE_SECONDS = 300
    settings.MESSAGE_BACKOFF_SECONDS = 60
    settings.MESSAGE_MAX_ATTEMPTS = 3
    return settings


def queue(recipient, study_id="OEI-0001", **context) -> Message:
    message_queue(
        kind=TEST_KIND,
        recipients=[recipient],
        about=f"family:{study_id}",
        due_on=date(2026, 11, 30),
        context={"study_id": study_id, **context},
    )
    return Message.objects.get(recipient=recipient, about=f"family:{study_id}")


def claimed_by_a_worker_that_died(message: Message, *, minutes_ago: int) -> None:
    """What a worker killed mid-send leaves: the message claimed, its claim never finished."""
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING,
        claimed_at=timezone.now() - timedelta(minutes=minutes_ago),
        attempts=message.attempts + 1,
    )


# --- Written with the change ----------------------------------------------------------------------------------


def test_a_message_is_written_only_if_the_change_commits(dina):
    with pytest.raises(RuntimeError), transaction.atomic():
        queue(dina)
        raise RuntimeError("the change fails")

    assert not Message.objects.exists()


def test_queuing_the_same_message_twice_makes_one(dina):
    queue(dina)
    queue(dina)

    assert Message.objects.count() == 1


def test_the_sweep_is_queued_when_the_change_commits_without_retrying(
    dina, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(tasks.deliver_due, "apply_async", lambda **options: calls.append(options))

    with django_capture_on_commit_callbacks(execute=True):
        queue(dina)
        assert calls == []

    assert calls == [{"retry": False}]


def test_a_broker_that_is_down_never_fails_the_change(dina, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(**options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.deliver_due, "apply_async", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        message = queue(dina)

    assert Message.objects.get(pk=message.pk).status == MessageStatus.PENDING
    assert messages_due_ids() == [message.pk]  # the beat's sweep delivers it


@pytest.mark.redis
def test_the_broker_gives_up_within_seconds_and_keeps_tasks_minutes_not_an_hour(settings):
    require(bool(settings.REDIS_URL), "the Redis transport's options apply only with REDIS_URL")
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["max_retries"] == 0
    assert options["socket_connect_timeout"] <= 2 and options["socket_timeout"] <= 2
    assert 60 <= options["visibility_timeout"] < 3600
    assert tasks.deliver_due.ignore_result and tasks.deliver_message.ignore_result


# --- Sent once, in the recipient's language ------------------------------------------------------------------


def test_it_sends_a_message_once_in_the_recipients_language(dina, fast):
    nora = UserFactory(username="nora", email="nora@example.org")  # no preference: Norwegian
    message_queue(
        kind="randomization.list_low",
        recipients=[dina, nora],
        about="list:1@30",
        due_on=date(2026, 11, 30),
        context={"site": "OEI", "remaining": 6, "length": 30},
    )

    assert tasks.deliver_due() == 2
    assert tasks.deliver_due() == 0

    subjects = {message.to[0]: message.subject for message in mail.outbox}
    assert subjects == {
        "dina@example.org": "Allocation list of OEI is running low",
        "nora@example.org": "Allokeringslisten for OEI er snart oppbrukt",
    }
    assert set(Message.objects.values_list("status", "attempts", "last_error")) == {(MessageStatus.SENT, 1, "")}
    assert Message.objects.filter(sent_at__isnull=True).count() == 0


def test_a_message_delivered_again_is_not_sent_again(dina, fast):
    message = queue(dina)

    assert message_deliver(message.pk) == MessageStatus.SENT
    assert message_deliver(message.pk) == "not claimed"

    assert len(mail.outbox) == 1


def test_a_user_without_an_address_gets_the_message_in_the_inbox_only(db, fast):
    frank = UserFactory(username="frank", email="")
    message = queue(frank)

    assert message_deliver(message.pk) == MessageStatus.SENT

    message.refresh_from_db()
    assert (message.status, message.last_error) == (MessageStatus.SENT, NO_ADDRESS)
    assert mail.outbox == []


def test_a_message_for_the_inbox_only_is_not_mailed(dina, fast):
    message_queue(
        kind=TEST_KIND,
        recipients=[dina],
        about="family:OEI-0002",
        due_on=date(2026, 11, 30),
        context={"study_id": "OEI-0002"},
        by_email=False,
    )

    tasks.deliver_due()

    message = Message.objects.get()
    assert (message.status, message.last_error) == (MessageStatus.SENT, "")
    assert mail.outbox == []


def test_a_message_no_longer_due_when_it_is_sent_is_cancelled_not_sent(dina, fast):
    message = queue(dina, done=True)

    assert message_deliver(message.pk) == MessageStatus.CANCELLED

    message.refresh_from_db()
    assert (message.status, message.cancel_reason) == (MessageStatus.CANCELLED, "no longer due")
    assert mail.outbox == []


def test_a_cancelled_message_is_not_sent(dina, fast):
    message = queue(dina)
    message_cancel(message=message, cancelled_by=dina, reason="The family was reached by phone.")

    assert tasks.deliver_due() == 0
    assert message_deliver(message.pk) == "not claimed"
    assert mail.outbox == []


# --- Retried with a backoff, then failed ------------------------------------------------------------------------


def test_a_failed_send_is_retried_after_a_doubling_backoff_then_marked_failed(dina, fast):
    fast.EMAIL_BACKEND = "notifications.tests.test_delivery.RefusingBackend"
    message = queue(dina)
    start = timezone.now()

    with time_machine.travel(start, tick=False) as traveller:
        assert message_deliver(message.pk) == MessageStatus.PENDING
        message.refresh_from_db()
        assert (message.attempts, message.next_attempt_at) == (1, start + timedelta(seconds=60))
        assert "ConnectionRefusedError: the mail server is down" in message.last_error
        # Not tried again before the backoff has passed.
        traveller.shift(timedelta(seconds=59))
        assert messages_due_ids() == []
        assert message_deliver(message.pk) == "not claimed"

        traveller.shift(timedelta(seconds=1))
        assert messages_due_ids() == [message.pk]
        assert message_deliver(message.pk) == MessageStatus.PENDING
        message.refresh_from_db()
        assert (message.attempts, message.next_attempt_at) == (2, timezone.now() + timedelta(seconds=120))

        traveller.shift(timedelta(seconds=120))
        assert message_deliver(message.pk) == MessageStatus.FAILED

    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == (MessageStatus.FAILED, 3, None)
    assert messages_due_ids() == []


def test_a_send_that_succeeds_after_failing_is_sent_with_its_attempts(dina, fast):
    fast.EMAIL_BACKEND = "notifications.tests.test_delivery.RefusingBackend"
    message = queue(dina)
    message_deliver(message.pk)
    fast.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert message_deliver(message.pk) == MessageStatus.SENT

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.SENT, 2, "")
    assert len(mail.outbox) == 1


# --- A worker that died mid-send --------------------------------------------------------------------------------


def test_a_claim_is_not_taken_from_a_worker_within_its_lease(dina, fast):
    message = queue(dina)
    claimed_by_a_worker_that_died(message, minutes_ago=4)

    assert messages_due_ids() == []
    assert message_deliver(message.pk) == "not claimed"
    assert mail.outbox == []


def test_a_message_abandoned_mid_send_is_sent_again_once_after_the_lease(dina, fast):
    message = queue(dina)
    claimed_by_a_worker_that_died(message, minutes_ago=6)

    assert messages_due_ids() == [message.pk]
    assert message_deliver(message.pk) == MessageStatus.SENT

    message.refresh_from_db()
    assert (message.status, message.attempts, message.abandoned_claims) == (MessageStatus.SENT, 2, 1)
    assert len(mail.outbox) == 1


def test_a_message_abandoned_twice_is_marked_failed_and_never_sent_a_third_time(dina, fast):
    message = queue(dina)
    claimed_by_a_worker_that_died(message, minutes_ago=12)
    with time_machine.travel(timezone.now() - timedelta(minutes=6)):
        # The second worker takes it and dies in its turn.
        assert services._claim(message.pk) is not None
    message.refresh_from_db()
    assert message.abandoned_claims == 1

    assert message_deliver(message.pk) == "not claimed"

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.FAILED, 2, ABANDONED_TWICE)
    assert mail.outbox == []
    assert messages_due_ids() == []


def test_a_worker_whose_claim_was_taken_writes_nothing_afterwards(dina, fast):
    message = queue(dina)
    with time_machine.travel(timezone.now() - timedelta(minutes=6)):
        stalled = services._claim(message.pk)  # a worker that stalls longer than its lease
    assert message_deliver(message.pk) == MessageStatus.SENT  # another worker takes it over

    # The stalled worker's send fails at last: its record must not undo the other's.
    assert services._finish(stalled, status=MessageStatus.PENDING, last_error="timed out") is False
    message.refresh_from_db()
    assert (message.status, message.last_error) == (MessageStatus.SENT, "")


def test_the_database_refuses_a_third_send_after_abandoned_claims(dina):
    message = queue(dina)

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.filter(pk=message.pk).update(abandoned_claims=2)


def test_the_database_refuses_a_message_sending_without_a_claim(dina):
    message = queue(dina)

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING)


# --- Many workers at once (PostgreSQL) --------------------------------------------------------------------------


@pytest.fixture
def counting_backend(settings):
    settings.EMAIL_BACKEND = "notifications.tests.test_delivery.CountingBackend"
    CountingBackend.sent.clear()
    yield CountingBackend.sent
    CountingBackend.sent.clear()


def test_many_sweeps_at_once_send_each_message_exactly_once(transactional_db, postgres, counting_backend):
    recipients = [UserFactory(username=f"manager{number}", email=f"m{number}@example.org") for number in range(3)]
    for number in range(10):
        message_queue(
            kind=TEST_KIND,
            recipients=recipients,
            about=f"family:OEI-{number:04}",
            due_on=date(2026, 11, 30),
            context={"study_id": f"OEI-{number:04}"},
        )

    results, errors = run_together(6, lambda i: tasks.deliver_due())

    assert errors == [None] * 6
    assert sum(results) >= 30  # every sweep saw the messages; each was claimed by one
    assert sorted(counting_backend) == sorted(f"Reminder for OEI-{number:04}" for number in range(10) for _ in range(3))
    assert set(Message.objects.values_list("status", "attempts")) == {(MessageStatus.SENT, 1)}


def test_many_workers_delivering_one_message_send_it_exactly_once(transactional_db, postgres, counting_backend):
    recipient = UserFactory(username="dina", email="dina@example.org")
    message_queue(
        kind=TEST_KIND,
        recipients=[recipient],
        about="family:OEI-0001",
        due_on=date(2026, 11, 30),
        context={"study_id": "OEI-0001"},
    )
    message = Message.objects.get()

    results, errors = run_together(8, lambda i: message_deliver(message.pk))

    assert errors == [None] * 8
    assert sorted(results) == ["not claimed"] * 7 + [MessageStatus.SENT]
    assert counting_backend == ["Reminder for OEI-0001"]


def test_many_workers_taking_an_abandoned_claim_send_it_once_more_only(transactional_db, postgres, counting_backend):
    recipient = UserFactory(username="dina", email="dina@example.org")
    message_queue(
        kind=TEST_KIND,
        recipients=[recipient],
        about="family:OEI-0001",
        due_on=date(2026, 11, 30),
        context={"study_id": "OEI-0001"},
    )
    message = Message.objects.get()
    claimed_by_a_worker_that_died(message, minutes_ago=10)

    _results, errors = run_together(8, lambda i: tasks.deliver_due())

    assert errors == [None] * 8
    assert counting_backend == ["Reminder for OEI-0001"]
    message.refresh_from_db()
    assert (message.status, message.abandoned_claims) == (MessageStatus.SENT, 1)


# --- Mail in development ----------------------------------------------------------------------------------------


def read_settings(env: dict[str, str], *names: str) -> list[str]:
    """Settings as a fresh process reads them from `env` (settings are read once per process)."""
    code = "import django; django.setup(); from django.conf import settings; " + "; ".join(
        f"print(settings.{name})" for name in names
    )
    outer = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    result = subprocess.run(  # noqa: S603 (this interpreter, our own code)
        [sys.executable, "-c", code],
        env={**outer, "DJANGO_SETTINGS_MODULE": "trial.settings", **env},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_in_development_mail_is_written_to_files_under_the_var_directory(tmp_path):
    backend, path = read_settings(
        {"TRIAL_ENV": "development", "TRIAL_VAR_DIR": str(tmp_path)}, "EMAIL_BACKEND", "EMAIL_FILE_PATH"
    )

    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert path == str(tmp_path / "mail")


def test_the_delivery_times_come_from_the_environment(tmp_path):
    values = read_settings(
        {
            "TRIAL_ENV": "test",
            "TRIAL_VAR_DIR": str(tmp_path),
            "MESSAGE_CLAIM_LEASE_SECONDS": "3",
            "MESSAGE_BACKOFF_SECONDS": "1",
            "MESSAGE_MAX_ATTEMPTS": "2",
            "MESSAGE_SWEEP_SECONDS": "5",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        },
        "MESSAGE_CLAIM_LEASE_SECONDS",
        "MESSAGE_BACKOFF_SECONDS",
        "MESSAGE_MAX_ATTEMPTS",
        "CELERY_BEAT_SCHEDULE['deliver-messages']['schedule']",
        "EMAIL_BACKEND",
    )

    assert values == ["3", "1", "2", "5", "django.core.mail.backends.smtp.EmailBackend"]


def test_a_sweep_delivers_every_page_of_due_messages(dina, fast, monkeypatch):
    for number in range(5):
        queue(dina, study_id=f"OEI-{number:04}")
    monkeypatch.setattr(tasks, "messages_due_ids", functools.partial(services.messages_due_ids, limit=2))

    assert tasks.deliver_due() == 5

    assert len(mail.outbox) == 5
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


@pytest.mark.parametrize("language", [Language.NORWEGIAN, Language.ENGLISH])
def test_the_data_managers_messages_carry_site_codes_and_study_ids_never_an_arm(dina, language):
    from randomization.kinds import KINDS

    Preference.objects.filter(user=dina).update(language=language)
    context = {"site": "OEI", "remaining": 4, "length": 30, "study_id": "OEI-0007", "user": "carol", "by": "paula"}
    for kind in KINDS:
        message = Message(kind=kind.code, recipient=dina, context=context)
        subject, body = services.message_text(message)
        text = f"{subject}\n{body}".lower()
        assert "oei" in text
        assert not any(word in text for word in ("intervention", "control", "intervensjon", "kontroll"))
