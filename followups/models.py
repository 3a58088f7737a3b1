"""Follow-up assessments: one row per family and time point, made when the family consents (baseline) and when it
is randomised (the later time points), with its window; the assessor records what happened.

Nothing here depends on the arm: the schedule is the same in both arms, and the assessor's guess of the arm is
stored for the blinding index of the report, never shown on a page.
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
    reason = models.CharField(_("reason"), max_length=40, blank=True)
    details = models.TextField(_("details"), blank=True, max_length=2000)
    outside_window = models.BooleanField(_("outside the window"), default=False)
    arm_guess = models.CharField(_("arm guessed by the assessor"), max_length=12, choices=ArmGuess.choices, blank=True)
    stopped_on = models.DateField(_("stopped on"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["family_id", "months"]
        verbose_name = _("assessment")
        verbose_name_plural = _("assessments")
        constraints = [
            models.UniqueConstraint(fields=["family", "months"], name="assessment_once_per_time_point"),
            models.CheckConstraint(
                condition=~models.Q(status__in=[s.value for s in DONE_WITH_DATE]) | models.Q(done_on__isnull=False),
                name="assessment_done_has_date",
            ),
            models.CheckConstraint(
                condition=models.Q(closes_on__isnull=True) | models.Q(opens_on__lte=models.F("closes_on")),
                name="assessment_window_ordered",
            ),
        ]
        indexes = [models.Index(fields=["status", "opens_on", "closes_on"], name="assessment_due")]

    def __str__(self) -> str:
        return f"{self.family_id}: {self.months}"
