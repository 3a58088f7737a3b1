"""What the reports app keeps of its own: the date shifts of the de-identified datasets."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from families.models import Family

# A family's dates move 1 to 365 days earlier (docs/decisions.md): never 0, so that no family keeps its real dates.
MIN_SHIFT_DAYS = 1
MAX_SHIFT_DAYS = 365


class DateShift(models.Model):
    """How many days every date of a family moves earlier in a date-shifted dataset (as REDCap's de-identified
    export does). Drawn once, the first time a shifted dataset needs it, and kept apart from the research records,
    so that every shifted download moves a family's dates by the same days (the datasets still join) while each
    family moves by its own. No page shows it."""

    family = models.OneToOneField(Family, on_delete=models.PROTECT, related_name="+", verbose_name=_("family"))
    days = models.PositiveSmallIntegerField(_("days earlier"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("date shift")
        verbose_name_plural = _("date shifts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(days__gte=MIN_SHIFT_DAYS, days__lte=MAX_SHIFT_DAYS), name="dateshift_days_in_range"
            ),
        ]

    def __str__(self) -> str:
        # Not the days: a string ends up in logs and admin messages.
        return f"date shift {self.family_id}"
