"""Every message the system sends: a row written in the same transaction as the change that causes it (the
outbox), delivered by Celery tasks, and kept as the recipient's inbox and the send log.

A message is unique on what it is about, its kind, its recipient and its due date, so a job that runs twice, two
beats or two workers never make it twice. It carries study IDs, site codes and numbers (`context`), never names or
other identifiers, and is written in the recipient's language when it is sent or read.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trial.models import Site


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


class Message(models.Model):
    kind = models.CharField(_("kind"), max_length=60)
    # What the message is about, as "<model>:<pk>" (for example "assessment:17", "family:4", "list:2").
    about = models.CharField(_("about"), max_length=80)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="messages", verbose_name=_("recipient")
    )
    # The local date (Europe/Oslo) the message is due: a reminder's day, or an event's date.
    due_on = models.DateField(_("due"))
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("site"))
    # Study IDs, site codes, dates and numbers for the text; never names or other identifiers.
    context = models.JSONField(_("context"), default=dict, blank=True)
    by_email = models.BooleanField(_("by e-mail"), default=True)

    status = models.CharField(_("status"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Not tried before this moment (backoff after a failure).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # When a worker claimed it; a claim older than the lease is taken again by the sweep.
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    # 1 once the message was taken again from a worker that stopped mid-send: it may have left then, so it is sent
    # again that once only, never a third time (notifications.services._claim).
    abandoned_claims = models.PositiveSmallIntegerField(_("claims abandoned mid-send"), default=0)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    # When the work the message is about was done (an assessment recorded): it leaves the inbox.
    resolved_at = models.DateTimeField(_("done"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["about", "kind", "recipient", "due_on"], name="message_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in MessageStatus]),
                name="message_status_known",
            ),
            # Sent again at most once after a worker stopped mid-send.
            models.CheckConstraint(condition=models.Q(abandoned_claims__lte=1), name="message_resent_at_most_once"),
            models.CheckConstraint(
                condition=~models.Q(status=MessageStatus.SENDING) | models.Q(claimed_at__isnull=False),
                name="message_sending_is_claimed",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="message_to_deliver"),
            models.Index(fields=["recipient", "read_at"], name="message_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.about} → {self.recipient_id} ({self.due_on})"


class Language(models.TextChoices):
    NORWEGIAN = "nb", "Norsk bokmål"
    ENGLISH = "en", "English"


class Preference(models.Model):
    """A user's own choices: the language of their messages (their e-mail address is the user's)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    language = models.CharField(_("language"), max_length=5, choices=Language.choices, default=Language.NORWEGIAN)

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"
