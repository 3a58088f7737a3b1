"""Races of the message pages' services on PostgreSQL: a failed message cancelled and sent again at the same moment,
ten data managers sending it again at once, a message cancelled while a worker claims it, and one profile saved from
two tabs at once (each thread has its own connection; families.tests.test_concurrency.run_together)."""

import pytest
from django.core.exceptions import ValidationError

from families.tests.test_concurrency import run_together
from notifications import services
from notifications.models import Message, MessageStatus, Preference
from notifications.tests.factories import send_message
from trial.models import AuditEvent, EventKind

pytestmark = pytest.mark.postgres


def cancel_or(other, *, message: Message, cancelled_by):
    """Thread 0 cancels the message, thread 1 does `other` to it."""

    def work(i: int):
        if i == 0:
            return services.message_cancel(message=message, cancelled_by=cancelled_by, reason="Not needed")
        return other(message)

    return work


def test_a_failed_message_cancelled_and_sent_again_at_once_ends_cancelled(
    postgres, transactional_db, oei, dina, alice, frank
):
    """In either order the cancel stands: sent again first, the message is pending, and a pending message can be
    cancelled; cancelled first, it cannot be sent again. Never a message sent again after its cancellation."""
    for _round in range(5):
        message = send_message(frank, site=oei, status=MessageStatus.FAILED)
        retry = lambda message: services.message_retry(message=message, retried_by=dina)  # noqa: E731

        _results, errors = run_together(2, cancel_or(retry, message=message, cancelled_by=alice))

        assert errors[0] is None, errors
        message.refresh_from_db()
        assert (message.status, message.cancelled_by, message.cancel_reason) == (
            MessageStatus.CANCELLED,
            alice,
            "Not needed",
        )
        retried = AuditEvent.objects.filter(kind=EventKind.MESSAGE_RETRIED, details__message=message.pk).count()
        if errors[1] is None:  # sent again first, then cancelled
            assert retried == 1
        else:
            assert isinstance(errors[1], ValidationError) and retried == 0
        Message.objects.filter(pk=message.pk).delete()


def test_ten_retries_at_once_send_a_failed_message_again_once(postgres, transactional_db, oei, dina, frank):
    message = send_message(frank, site=oei, status=MessageStatus.FAILED)

    _results, errors = run_together(10, lambda i: services.message_retry(message=message, retried_by=dina))

    assert sum(error is None for error in errors) == 1, errors
    assert AuditEvent.objects.filter(kind=EventKind.MESSAGE_RETRIED).count() == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 0)


def test_a_message_cancelled_while_a_worker_claims_it_is_either_cancelled_or_sent(
    postgres, transactional_db, oei, dina, frank, mailoutbox
):
    frank.email = "frank@example.no"
    frank.save()
    sent = 0
    for _round in range(5):
        message = send_message(frank, site=oei)

        results, errors = run_together(
            2, cancel_or(lambda message: services.message_deliver(message.pk), message=message, cancelled_by=dina)
        )

        message.refresh_from_db()
        if errors[0] is None:  # the cancel came first: the worker found nothing to claim
            assert message.status == MessageStatus.CANCELLED and results[1] == "not claimed"
        else:
            assert isinstance(errors[0], ValidationError)
            assert message.status == MessageStatus.SENT and results[1] == MessageStatus.SENT
            sent += 1
        Message.objects.filter(pk=message.pk).delete()
    assert len(mailoutbox) == sent, "a mail for each message sent, none for a cancelled one"


def test_one_profile_saved_from_two_tabs_at_once_keeps_one_preference(postgres, transactional_db, frank):
    _results, errors = run_together(
        2,
        lambda i: services.preference_save(user=frank, email=f"frank{i}@example.no", language=["en", "nb"][i]),
    )

    assert errors == [None, None]
    assert Preference.objects.filter(user=frank).count() == 1
    frank.refresh_from_db()
    last = 0 if frank.email == "frank0@example.no" else 1
    assert Preference.objects.get(user=frank).language == ["en", "nb"][last]
