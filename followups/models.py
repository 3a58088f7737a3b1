"""Follow-up assessments: one row per family and time point, made when the family consents (baseline) and when it
is randomised (the later time points), with its window; the assessor records what happened.

Nothing here depends on the arm: the schedule is the same in both arms. The assessor's guess of the arm is kept in
a model of its own (`BlindingGuess`), which no page, timeline or admin list shows: the report turns it into a
blinding index.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from families.models import Family


class AssessmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("scheduled")
    COMPLETED = "completed", _("completed")
    PARTLY = "partly", _("partly completed")
    MISSED = "missed", _("missed")
    REFUSED = "refused", _("refused")
    STOPPED = "stopped", _("stopped")


RECORDED = (AssessmentStatus.COMPLETED, AssessmentStatus.PARTLY, AssessmentStatus.MISSED, AssessmentStatus.REFUSED)
DONE_WITH_DATE = (AssessmentStatus.COMPLETED, AssessmentStatus.PARTLY)


class AssessmentMode(models.TextChoices):
    HOME_VISIT = "home_visit", _("home visit")
    PHONE = "phone", _("phone")
    ONLINE = "online", _("online")


class MissedReason(models.TextChoices):
    NOT_REACHED = "not_reached", _("could not reach the family")
    NOT_AVAILABLE = "not_available", _("no time found within the window")
    ILLNESS = "illness", _("illness")
    MOVED = "moved", _("the family moved")
    OTHER = "other", _("other")


class StopReason(models.TextChoices):
    WITHDRAWAL = "withdrawal", _("withdrawal")
    LOST = "lost", _("lost to follow-up")
    SCHEDULE_CHANGED = "schedule_changed", _("time point removed from the schedule")


class ArmGuess(models.TextChoices):
    INTERVENTION = "intervention", _("intervention")
    CONTROL = "control", _("control")
    DONT_KNOW = "dont_know", _("don't know")


class Assessment(models.Model):
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="assessments", verbose_name=_("family"))
    months = models.PositiveSmallIntegerField(_("time point (months)"), help_text=_("0 is baseline."))
    opens_on = models.DateField(_("window opens"))
    target_on = models.DateField(_("target date"))
    closes_on = models.DateField(_("window closes"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=AssessmentStatus.choices, default=AssessmentStatus.SCHEDULED
    )
    booked_on = models.DateField(_("booked for"), null=True, blank=True)
    done_on = models.DateField(_("date"), null=True, blank=True)
    mode = models.CharField(_("mode"), max_length=12, choices=AssessmentMode.choices, blank=True)
    questionnaires = models.JSONField(_("questionnaires"), default=list, blank=True)
    reason = models.CharField(_("reason"), max_length=40, choices=MissedReason.choices, blank=True)
    details = models.TextField(_("details"), blank=True, max_length=2000)
    outside_window = models.BooleanField(_("outside the window"), default=False)
    stopped_on = models.DateField(_("stopped on"), null=True, blank=True)
    stop_reason = models.CharField(_("why it stopped"), max_length=20, choices=StopReason.choices, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded"), null=True, blank=True)
    # The recording form's one-time token: a resubmitted form (a double click, a reload) finds its recording here.
    submission_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        ordering = ["family_id", "months"]
        verbose_name = _("assessment")
        verbose_name_plural = _("assessments")
        constraints = [
            models.UniqueConstraint(fields=["family", "months"], name="assessment_once_per_time_point"),
            # Every recorded outcome has its date (the day it was done, missed or refused), and only those.
            models.CheckConstraint(
                condition=(
                    models.Q(status__in=[s.value for s in RECORDED], done_on__isnull=False)
                    | (~models.Q(status__in=[s.value for s in RECORDED]) & models.Q(done_on__isnull=True))
                ),
                name="assessment_recorded_has_date",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=[s.value for s in DONE_WITH_DATE]) | ~models.Q(mode=""),
                name="assessment_done_has_mode",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=AssessmentStatus.MISSED) | ~models.Q(reason=""),
                name="assessment_missed_has_reason",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status=AssessmentStatus.STOPPED, stopped_on__isnull=False) & ~models.Q(stop_reason="")
                )
                | (~models.Q(status=AssessmentStatus.STOPPED) & models.Q(stopped_on__isnull=True)),
                name="assessment_stopped_has_date",
            ),
            models.CheckConstraint(
                condition=models.Q(closes_on__isnull=True) | models.Q(opens_on__lte=models.F("closes_on")),
                name="assessment_window_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(opens_on__lte=models.F("target_on")), name="assessment_target_in_window"
            ),
        ]
        indexes = [models.Index(fields=["status", "opens_on", "closes_on"], name="assessment_due")]

    def __str__(self) -> str:
        return f"{self.family_id}: {self.months}"

    @property
    def is_baseline(self) -> bool:
        return self.months == 0

    @property
    def is_recorded(self) -> bool:
        return self.status in RECORDED


class BlindingGuess(models.Model):
    """The assessor's answer to "which arm do you think this family is in?" at a completed or partly completed
    follow-up: kept for the blinding index, never shown on a page, in a timeline or in the admin's lists."""

    assessment = models.OneToOneField(
        Assessment, on_delete=models.PROTECT, related_name="blinding_guess", verbose_name=_("assessment")
    )
    guess = models.CharField(_("arm guessed by the assessor"), max_length=12, choices=ArmGuess.choices)
    guessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("guessed by")
    )
    guessed_at = models.DateTimeField(_("guessed"), auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("blinding guess")
        verbose_name_plural = _("blinding guesses")

    def __str__(self) -> str:
        # Not the guess: a string ends up in logs and admin messages.
        return f"guess {self.assessment_id}"


class LostReason(models.TextChoices):
    NOT_REACHED = "not_reached", _("could not be reached")
    MOVED = "moved", _("moved away, no new address")
    DECLINED = "declined", _("no longer wants to be contacted")
    OTHER = "other", _("other")


class LostToFollowUp(models.Model):
    """A family the assessors can no longer reach: its remaining schedule stops from `lost_on`, like a
    withdrawal (the family has not withdrawn, and what was collected stays)."""

    family = models.OneToOneField(
        Family, on_delete=models.PROTECT, related_name="lost_to_follow_up", verbose_name=_("family")
    )
    lost_on = models.DateField(_("lost to follow-up on"))
    reason = models.CharField(_("reason"), max_length=20, choices=LostReason.choices)
    details = models.TextField(_("details"), blank=True, max_length=2000)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    submission_token = models.UUIDField(unique=True, editable=False)
    history = HistoricalRecords(excluded_fields=["submission_token"])

    class Meta:
        verbose_name = _("lost to follow-up")
        verbose_name_plural = _("lost to follow-up")

    def __str__(self) -> str:
        return f"lost {self.family_id}"
