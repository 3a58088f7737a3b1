"""Every write of follow-ups. The schedule is made and stopped through the signals of the layers below, inside
their transactions (the family's row is locked by then)."""

from django.db.models import Q
from django.utils.translation import gettext as _

from families.models import Family
from followups.models import RECORDED, Assessment, AssessmentStatus
from followups.schedule import BASELINE, baseline_window, windows_from_settings
from trial.audit import save_as
from trial.dates import today
from trial.models import TrialSettings


def schedule_baseline_on_consent(*, family, consent, recorded_by, **kwargs) -> None:
    """The baseline assessment, due from the consent (a second consent after a decline keeps the first row)."""
    window = baseline_window(consent.decided_on)
    if Assessment.objects.filter(family=family, months=BASELINE).exists():
        return
    save_as(
        Assessment(family=family, months=BASELINE, opens_on=window.opens_on, target_on=window.target_on),
        recorded_by,
    )


def schedule_follow_ups_on_randomisation(*, family, allocation, randomised_by, **kwargs) -> None:
    """The later time points, anchored to the randomisation's date in Europe/Oslo."""
    randomised_on = today(allocation.randomised_at)
    existing = set(Assessment.objects.filter(family=family).values_list("months", flat=True))
    for window in windows_from_settings(randomised_on, TrialSettings.current()):
        if window.months in existing:
            continue
        save_as(
            Assessment(
                family=family,
                months=window.months,
                opens_on=window.opens_on,
                target_on=window.target_on,
                closes_on=window.closes_on,
            ),
            randomised_by,
        )


def stop_schedule_on_withdrawal(*, family, withdrawal, recorded_by, **kwargs) -> None:
    """Withdrawal stops the schedule from its date: assessments not recorded whose window had not closed by then."""
    open_after = Q(closes_on__isnull=True) | Q(closes_on__gte=withdrawal.withdrawn_on)
    for assessment in Assessment.objects.filter(open_after, family=family, status=AssessmentStatus.SCHEDULED):
        assessment.status = AssessmentStatus.STOPPED
        assessment.stopped_on = withdrawal.withdrawn_on
        save_as(assessment, recorded_by, reason="withdrawal")


def baseline_refusal(family: Family) -> str | None:
    """With the trial's setting on (the default), a family is randomised only after its baseline is recorded as
    completed or partly completed."""
    if not TrialSettings.current().baseline_before_randomisation:
        return None
    done = Assessment.objects.filter(
        family=family, months=BASELINE, status__in=[AssessmentStatus.COMPLETED, AssessmentStatus.PARTLY]
    ).exists()
    if done:
        return None
    return _(
        "%(study_id)s cannot be randomised before its baseline assessment is recorded. Ask the site's outcome "
        "assessor to record it first."
    ) % {"study_id": family.study_id}


__all__ = ["RECORDED"]
