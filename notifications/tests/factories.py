"""A kind of message the tests register (the apps that send messages register their own kinds), and messages of it.

Its texts differ by language, so that a test sees which language a page or an e-mail used; its body carries a marker
that no page but the recipient's own may show (a receipt's body may carry an arm)."""

from datetime import date

from django.urls import reverse
from django.utils import translation

from notifications.kinds import Kind, register_kind
from notifications.models import Message, MessageStatus
from notifications.services import message_queue
from trial.dates import today

BODY_MARKER = "Body-only text: the arm would be here"


def _subject(context: dict) -> str:
    if translation.get_language() == "nb":
        return f"Påminnelse om {context.get('study_id', '')}"
    return f"Reminder about {context.get('study_id', '')}"


def _body(context: dict) -> str:
    if translation.get_language() == "nb":
        return f"Ingen kontakt forrige uke med {context.get('study_id', '')}. {BODY_MARKER}"
    return f"No contact last week with {context.get('study_id', '')}. {BODY_MARKER}"


TEST_KIND = Kind(
    code="test_reminder",
    label="Test reminder",
    subject=_subject,
    body=_body,
    link=lambda context: reverse("visits:partner_home"),
)
OTHER_KIND = Kind(
    code="test_alert",
    label="Test alert",
    subject=lambda context: f"Alert {context.get('study_id', '')}",
    body=lambda context: f"Alert body {BODY_MARKER}",
)
register_kind(TEST_KIND)
register_kind(OTHER_KIND)


def send_message(
    to,
    *,
    study_id: str = "OEI-001",
    site=None,
    due_on: date | None = None,
    kind: str = TEST_KIND.code,
    status: str = MessageStatus.PENDING,
    context: dict | None = None,
    **fields,
) -> Message:
    """One message to `to` (queued through the service), then put in `status` and given `fields`."""
    due_on = due_on or today()
    about = f"family:{study_id}"
    message_queue(
        kind=kind,
        recipients=[to],
        about=about,
        due_on=due_on,
        context={"study_id": study_id, **(context or {})},
        site=site,
    )
    message = Message.objects.get(kind=kind, about=about, recipient=to, due_on=due_on)
    changes = {"status": status, **fields}
    if status == MessageStatus.FAILED:
        changes.setdefault("attempts", 6)
        changes.setdefault("last_error", "SMTPRecipientsRefused: refused")
    if status == MessageStatus.SENT:
        from django.utils import timezone

        changes.setdefault("sent_at", timezone.now())
    if status == MessageStatus.SENDING:
        from django.utils import timezone

        # The database requires a claim time on a message being sent.
        changes.setdefault("claimed_at", timezone.now())
        changes.setdefault("attempts", 1)
    Message.objects.filter(pk=message.pk).update(**changes)
    message.refresh_from_db()
    return message
