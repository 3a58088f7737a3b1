"""Writing messages (in the transaction of the change that causes them), reading, cancelling and delivering them."""

import logging
from collections.abc import Iterable
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as Account
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notifications.kinds import get_kind
from notifications.models import Language, Message, MessageStatus, Preference
from notifications.selectors import can_manage
from trial.models import Site
from trial.roles import User

logger = logging.getLogger(__name__)


def message_queue(
    *,
    kind: str,
    recipients: Iterable[Account],
    about: str,
    due_on: date,
    context: dict | None = None,
    site: Site | None = None,
    by_email: bool = True,
) -> int:
    """One message of `kind` about `about` to each recipient, due on `due_on`, unless it exists already: call it
    inside the transaction of the change that causes it. Delivery is queued when that transaction commits.
    Returns the number of recipients."""
    rows = [
        Message(
            kind=kind,
            about=about,
            recipient=recipient,
            due_on=due_on,
            context=context or {},
            site=site,
            by_email=by_email,
        )
        for recipient in recipients
    ]
    messages_queue_many(rows)
    return len(rows)


def messages_queue_many(rows: list[Message]) -> None:
    """Insert many messages at once; those that exist already (same about, kind, recipient, due date) are left as
    they are. Delivery is queued when the transaction commits."""
    if not rows:
        return
    assert all(get_kind(row.kind) is not None for row in rows), "every kind of message is registered"
    Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    transaction.on_commit(_kick_delivery)


def _kick_delivery() -> None:
    """Ask a worker to deliver what is due now. A broker that is down must never fail the user's request: the
    periodic sweep (notifications.tasks.deliver_due) delivers what was never queued."""
    from notifications import tasks

    try:
        tasks.deliver_due.apply_async(retry=False)
    except Exception:  # any broker failure: the sweep delivers later
        logger.warning("Could not queue message delivery; the periodic sweep will deliver it.", exc_info=True)


def language_of(user: User) -> str:
    if isinstance(user, AnonymousUser):
        return Language.NORWEGIAN
    preference = Preference.objects.filter(user=user).only("language").first()
    return preference.language if preference else Language.NORWEGIAN


def message_text(message: Message, language: str | None = None) -> tuple[str, str]:
    """(subject, body) in `language` (default: the recipient's)."""
    kind = get_kind(message.kind)
    if kind is None:
        return message.kind, ""
    with translation.override(language or language_of(message.recipient)):
        return str(kind.subject(message.context)), str(kind.body(message.context))


def message_link(message: Message) -> str | None:
    kind = get_kind(message.kind)
    return kind.link(message.context) if kind else None


def message_mark_read(*, message: Message, user: User) -> None:
    if message.recipient_id != user.pk:
        raise PermissionDenied
    Message.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=timezone.now())


def _require_manager(user: User, message: Message) -> None:
    """Cancel and retry are for data managers (any message) and researchers (their sites' messages): the service
    refuses anyone else, whichever page or command calls it."""
    if not can_manage(user, message):
        raise PermissionDenied


def message_cancel(*, message: Message, cancelled_by: User, reason: str) -> Message:
    """Stop a message that was not sent yet; a sent message cannot be cancelled."""
    _require_manager(cancelled_by, message)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for cancelling the message.")})
    with transaction.atomic():
        updated = Message.objects.filter(
            pk=message.pk, status__in=[MessageStatus.PENDING, MessageStatus.FAILED]
        ).update(status=MessageStatus.CANCELLED, cancelled_by=cancelled_by, cancel_reason=reason[:200])
        if not updated:
            raise ValidationError(_("Only a message that has not been sent can be cancelled."))
    message.refresh_from_db()
    return message


def claim_lease() -> timedelta:
    """How long a claim holds: a worker that claimed a message and did not finish within it is taken to be dead."""
    return timedelta(seconds=settings.MESSAGE_CLAIM_LEASE_SECONDS)


def backoff_after(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failed sends: the backoff, doubled each time."""
    return timedelta(seconds=settings.MESSAGE_BACKOFF_SECONDS) * 2 ** (attempts - 1)


ABANDONED_TWICE = "A worker stopped twice while sending it: it may have been sent, so it is not sent again."
NO_ADDRESS = "No e-mail address: in the inbox only."


def _due_now(now) -> Q:
    return Q(status=MessageStatus.PENDING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _abandoned(now) -> Q:
    return Q(status=MessageStatus.SENDING, claimed_at__lt=now - claim_lease())


def _claim(message_id: int) -> Message | None:
    """Take one message for sending with a conditional update: only one worker wins it, and its claim time is its
    token (a worker whose claim was taken from it writes nothing afterwards).

    A claim older than the lease was abandoned by a worker that died (or stalled) mid-send: the message may have
    left already, so it is sent again once only (`abandoned_claims`, at most 1 in the database too); abandoned a
    second time, it is marked failed instead of sent a third time."""
    now = timezone.now()
    attempt = {"status": MessageStatus.SENDING, "claimed_at": now, "attempts": F("attempts") + 1}
    won = Message.objects.filter(_due_now(now), pk=message_id).update(**attempt)
    if not won:
        won = Message.objects.filter(_abandoned(now), pk=message_id, abandoned_claims=0).update(
            **attempt, abandoned_claims=1
        )
        if won:
            logger.warning("Message %s: its worker stopped mid-send; sending it again, once.", message_id)
    if not won:
        if Message.objects.filter(_abandoned(now), pk=message_id).update(
            status=MessageStatus.FAILED, next_attempt_at=None, last_error=ABANDONED_TWICE
        ):
            logger.error("Message %s: abandoned twice mid-send; marked failed, not sent again.", message_id)
        return None
    return Message.objects.select_related("recipient").get(pk=message_id)


def _finish(message: Message, **fields) -> bool:
    """Record the end of this worker's attempt, unless its claim was taken from it (the lease ran out)."""
    return bool(
        Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING, claimed_at=message.claimed_at).update(
            **fields
        )
    )


def message_deliver(message_id: int) -> str:
    """Send one message if it is still to be sent: claimed, checked again (still due: not done, family not
    withdrawn), mailed in the recipient's language, and marked sent; a failed send is tried again after a backoff,
    and marked failed after MESSAGE_MAX_ATTEMPTS. Returns its status afterwards ("not claimed" when another worker
    has it or it is not due)."""
    message = _claim(message_id)
    if message is None:
        return "not claimed"
    kind = get_kind(message.kind)
    if kind is None or not kind.still_due(message):
        _finish(message, status=MessageStatus.CANCELLED, cancel_reason="no longer due")
        return MessageStatus.CANCELLED
    address = message.recipient.email
    note = ""
    try:
        if message.by_email and address:
            subject, body = message_text(message)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        elif message.by_email:
            note = NO_ADDRESS
    except Exception as error:  # any failure of the mail server: tried again, then "failed"
        failed = message.attempts >= settings.MESSAGE_MAX_ATTEMPTS
        _finish(
            message,
            status=MessageStatus.FAILED if failed else MessageStatus.PENDING,
            next_attempt_at=None if failed else timezone.now() + backoff_after(message.attempts),
            last_error=f"{type(error).__name__}: {error}"[:500],
        )
        logger.warning("Message %s not sent (attempt %s): %s", message.pk, message.attempts, type(error).__name__)
        return MessageStatus.FAILED if failed else MessageStatus.PENDING
    _finish(message, status=MessageStatus.SENT, sent_at=timezone.now(), next_attempt_at=None, last_error=note)
    return MessageStatus.SENT


def messages_due_ids(limit: int = 500, after: int = 0) -> list[int]:
    """Messages to deliver now, in order, from the one after `after`: pending and due, or claimed by a worker that
    did not finish within the lease."""
    now = timezone.now()
    due = Message.objects.filter(_due_now(now) | _abandoned(now), pk__gt=after)
    return list(due.order_by("pk").values_list("pk", flat=True)[:limit])


# --- Reading and managing messages (the inbox, the profile and the send log) ---------------------------------


def messages_mark_all_read(*, user: Account) -> int:
    """Mark every unread message of the user's inbox read. Returns how many."""
    return Message.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())


def message_retry(*, message: Message, retried_by: Account) -> Message:
    """Send a failed message again: pending, with its attempts counted from zero (the backoff starts again). The
    conditional update makes two retries at the same moment one, and a cancel at the same moment stands whichever
    comes first (a cancelled message is never made pending again)."""
    from trial.events import record_event
    from trial.models import EventKind

    _require_manager(retried_by, message)
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, status=MessageStatus.FAILED).update(
            status=MessageStatus.PENDING, attempts=0, next_attempt_at=None, claimed_at=None
        )
        if not updated:
            raise ValidationError(_("Only a message whose sending failed can be sent again."))
        record_event(
            kind=EventKind.MESSAGE_RETRIED,
            user=retried_by,
            site=message.site,
            subject=str(message.context.get("study_id", ""))[:64],
            message=message.pk,
            message_kind=message.kind,
        )
        transaction.on_commit(_kick_delivery)
    message.refresh_from_db()
    return message


# django.contrib.auth's User.email
EMAIL_MAX_LENGTH = 254


def preference_save(*, user: Account, email: str, language: str) -> Preference:
    """The user's own e-mail address and the language of their messages. The change is an audit event that names
    what changed, never the address (simple-history does not follow Django's User)."""
    from django.core.validators import validate_email

    from trial.events import record_event
    from trial.models import EventKind

    email = Account.objects.normalize_email(email.strip())
    errors: dict[str, list[str]] = {}
    if not email:
        errors["email"] = [_("Enter your e-mail address: reminders are sent to it.")]
    else:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = [_("Enter a valid e-mail address.")]
    if len(email) > EMAIL_MAX_LENGTH:
        errors["email"] = [_("Enter a valid e-mail address.")]
    if language not in Language.values:
        errors["language"] = [_("Choose one of the languages in the list.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The user's row is the lock: two saves of one profile at once (two tabs) queue here, and the second finds
        # the Preference row the first one made instead of failing on a second one.
        account = Account.objects.select_for_update().get(pk=user.pk)
        preference, _created = Preference.objects.get_or_create(user=account)
        changed = []
        if account.email != email:
            account.email = email
            account.save(update_fields=["email"])
            changed.append("email")
        if preference.language != language:
            preference.language = language
            preference.save(update_fields=["language"])
            changed.append("language")
        if changed:
            record_event(kind=EventKind.PROFILE_CHANGED, user=account, changed=changed, language=language)
    user.email = email
    return preference


def message_mark_unread(*, message: Message, user: Account) -> None:
    if message.recipient_id != user.pk:
        raise PermissionDenied
    Message.objects.filter(pk=message.pk).update(read_at=None)


def messages_resolve(*, about: str) -> int:
    """The work `about` (for example "assessment:17") is done: its messages leave the inboxes, and those not sent
    yet are cancelled. Call it in the transaction that does the work. Returns how many messages it touched."""
    now = timezone.now()
    Message.objects.filter(about=about, status__in=[MessageStatus.PENDING, MessageStatus.FAILED]).update(
        status=MessageStatus.CANCELLED, cancel_reason="done"
    )
    return Message.objects.filter(about=about, resolved_at__isnull=True).update(resolved_at=now)
