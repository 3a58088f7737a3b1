"""Every write of follow-ups.

The schedule is made and stopped through the signals of the layers below, inside their transactions (the family's
row is locked by then). The assessors' writes (recording, correcting, booking, losing a family to follow-up) each
run in one transaction that locks the family's row first, re-reads the assessment under it, checks, then writes
through `trial.audit.save_as`; a resubmitted form carries the same one-time token and changes nothing.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, InternalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from families.models import Family, FamilyStatus
from families.services import lock_family
from followups.models import (
    DONE_WITH_DATE,
    RECORDED,
    Assessment,
    AssessmentStatus,
    BlindingGuess,
    LostToFollowUp,
    StopReason,
)
from followups.schedule import BASELINE, baseline_window, windows_from_settings
from followups.selectors import can_record, consent_date, randomisation_date
from notifications.services import messages_resolve
from trial.audit import save_as
from trial.dates import today
from trial.models import TrialSettings

# The message of the trigger that keeps a stopped row as it is (migration 0002).
STOPPED_IS_FINAL = "a stopped assessment cannot be changed"


# --- The schedule, from the family's life ---------------------------------------------------------------------


def schedule_baseline_on_consent(*, family, consent, recorded_by, **kwargs) -> None:
    """The baseline assessment, due from the consent (a second consent after a decline keeps the first row)."""
    window = baseline_window(consent.decided_on)
    if Assessment.objects.filter(family=family, months=BASELINE).exists():
        return
    save_as(
        Assessment(family=family, months=BASELINE, opens_on=window.opens_on, target_on=window.target_on),
        recorded_by,
    )


def _save_as_the_schedule(assessment: Assessment) -> None:
    """Saved with no user in its history ("the system" on the timeline): the rows the randomisation makes must not
    name who randomised, which a blinded viewer may not learn (docs/trial-rules.md)."""
    assessment._history_user = None  # type: ignore[attr-defined]  # simple-history's hook; not a field
    assessment.save()


def schedule_follow_ups_on_randomisation(*, family, allocation, randomised_by, **kwargs) -> None:
    """The later time points, anchored to the randomisation's date in Europe/Oslo. A baseline not yet recorded
    (the trial's setting off) closes on the randomisation's day: from then on it is overdue."""
    randomised_on = today(allocation.randomised_at)
    existing = {a.months: a for a in Assessment.objects.filter(family=family)}
    baseline = existing.get(BASELINE)
    if baseline is not None and baseline.status == AssessmentStatus.SCHEDULED and baseline.closes_on is None:
        baseline.closes_on = max(randomised_on, baseline.opens_on)
        _save_as_the_schedule(baseline)
    for window in windows_from_settings(randomised_on, TrialSettings.current()):
        if window.months in existing:
            continue
        _save_as_the_schedule(
            Assessment(
                family=family,
                months=window.months,
                opens_on=window.opens_on,
                target_on=window.target_on,
                closes_on=window.closes_on,
            )
        )


def reminder_about(assessment_pk: int) -> str:
    """What the reminders about an assessment are about (notifications.models.Message.about)."""
    return f"assessment:{assessment_pk}"


def _stop_from(family: Family, stopped_on: date, reason: str, by: User) -> None:
    """Stop the assessments not recorded whose window had not closed by `stopped_on` (a stopped row is final)."""
    open_after = Q(closes_on__isnull=True) | Q(closes_on__gte=stopped_on)
    for assessment in Assessment.objects.filter(open_after, family=family, status=AssessmentStatus.SCHEDULED):
        assessment.status = AssessmentStatus.STOPPED
        assessment.stopped_on = stopped_on
        assessment.stop_reason = reason
        assessment.booked_on = None
        save_as(assessment, by, reason=str(StopReason(reason).label))
        messages_resolve(about=reminder_about(assessment.pk))


def stop_schedule_on_withdrawal(*, family, withdrawal, recorded_by, **kwargs) -> None:
    """Withdrawal stops the schedule from its date: assessments not recorded whose window had not closed by then."""
    _stop_from(family, withdrawal.withdrawn_on, StopReason.WITHDRAWAL, recorded_by)


def schedule_recompute_on_settings_change(*, settings, changed, changed_by, **kwargs) -> None:
    """The trial's time points or windows changed: recompute the schedule of every randomised family (in the
    settings change's transaction). Only assessments not yet recorded move; a new time point is added where its
    window has not closed yet; a removed time point's rows with nothing recorded are stopped (never deleted), and
    recorded ones stay (docs/decisions.md)."""
    fields = {
        "follow_up_months",
        "assessment_window_days_before",
        "assessment_window_days_after",
        "later_window_days_before",
        "later_window_days_after",
    }
    if not changed & fields:
        return
    schedule_recompute(trial_settings=settings, changed_by=changed_by)


def schedule_recompute(*, trial_settings: TrialSettings, changed_by: User) -> int:
    """Bring every randomised family's schedule in line with `trial_settings`; the number of rows changed."""
    from randomization.models import Allocation

    on = today()
    changed = 0
    # Each family's row is locked, in key order (so two recomputations never deadlock), before its assessments are
    # read: a recording at the same moment either comes first (its row is no longer scheduled and is left alone)
    # or waits for this.
    families = list(
        Family.objects.select_for_update(of=("self",))
        .filter(status=FamilyStatus.RANDOMISED, lost_to_follow_up__isnull=True)
        .order_by("pk")
    )
    randomised = dict(Allocation.objects.filter(family__in=families).values_list("family_id", "randomised_at"))
    rows: dict[int, dict[int, Assessment]] = {}
    for assessment in Assessment.objects.filter(family__in=families).exclude(months=BASELINE):
        rows.setdefault(assessment.family_id, {})[assessment.months] = assessment
    for family in families:
        if family.pk not in randomised:
            continue
        windows = {w.months: w for w in windows_from_settings(today(randomised[family.pk]), trial_settings)}
        existing = rows.get(family.pk, {})
        for months, assessment in existing.items():
            if assessment.status != AssessmentStatus.SCHEDULED:
                continue
            window = windows.get(months)
            if window is None:
                assessment.status = AssessmentStatus.STOPPED
                assessment.stopped_on = on
                assessment.stop_reason = StopReason.SCHEDULE_CHANGED
                assessment.booked_on = None
                save_as(assessment, changed_by, reason=str(StopReason.SCHEDULE_CHANGED.label))
                changed += 1
            elif (assessment.opens_on, assessment.target_on, assessment.closes_on) != (
                window.opens_on,
                window.target_on,
                window.closes_on,
            ):
                assessment.opens_on, assessment.target_on = window.opens_on, window.target_on
                assessment.closes_on = window.closes_on
                save_as(assessment, changed_by, reason=_("The trial's follow-up windows changed."))
                changed += 1
        for months, window in windows.items():
            if months not in existing and window.closes_on is not None and window.closes_on >= on:
                save_as(
                    Assessment(
                        family=family,
                        months=months,
                        opens_on=window.opens_on,
                        target_on=window.target_on,
                        closes_on=window.closes_on,
                    ),
                    changed_by,
                    reason=_("The trial's follow-up time points changed."),
                )
                changed += 1
    return changed


# --- The baseline rule ------------------------------------------------------------------------------------------


def baseline_refusal(family: Family) -> str | None:
    """With the trial's setting on (the default), a family is randomised only after its baseline is recorded as
    completed or partly completed. Asked on the randomisation page and again under the family's lock in the
    randomisation's transaction (randomization.preconditions)."""
    if not TrialSettings.current().baseline_before_randomisation:
        return None
    done = Assessment.objects.filter(family=family, months=BASELINE, status__in=DONE_WITH_DATE).exists()
    if done:
        return None
    return _(
        "%(study_id)s cannot be randomised before its baseline assessment is recorded as completed or partly "
        "completed. Ask the site's outcome assessor to record it first."
    ) % {"study_id": family.study_id}


# --- Recording -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the assessor records (the form's cleaned data, parsed only)."""

    status: str
    done_on: date | None
    mode: str = ""
    questionnaires: list[str] = field(default_factory=list)
    reason: str = ""
    details: str = ""
    arm_guess: str = ""
    confirm_outside_window: bool = False


def _locked_assessment(assessment: Assessment) -> tuple[Family, Assessment]:
    family = lock_family(assessment.family)
    return family, Assessment.objects.select_for_update().get(pk=assessment.pk)


def _check_outcome(family: Family, assessment: Assessment, outcome: Outcome, questionnaires: list[str]) -> bool:
    """Raise every error of `outcome` at once (field by field); whether its date is outside the window."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if outcome.status not in RECORDED:
        add("status", _("Choose what happened."))
    on = outcome.done_on
    outside = False
    if on is None:
        add("done_on", _("Give the date."))
    else:
        if on > today():
            add("done_on", _("The date cannot be in the future."))
        if assessment.is_baseline:
            start, start_message = consent_date(family), _("The date cannot be before the family's consent (%(date)s).")
        else:
            start, start_message = (
                randomisation_date(family),
                _("The date cannot be before the family's randomisation (%(date)s)."),
            )
        if start is not None and on < start:
            add("done_on", start_message % {"date": _date(start)})
        if outcome.status in DONE_WITH_DATE:
            outside = on < assessment.opens_on or (assessment.closes_on is not None and on > assessment.closes_on)
            if outside and not outcome.confirm_outside_window and "done_on" not in errors:
                add(
                    "confirm_outside_window",
                    _(
                        "%(date)s is outside the window (%(opens)s to %(closes)s). Tick the box to confirm the date: "
                        "the assessment will be flagged as outside its window."
                    )
                    % {
                        "date": _date(on),
                        "opens": _date(assessment.opens_on),
                        "closes": _date(assessment.closes_on) if assessment.closes_on else "—",
                    },
                )
    if outcome.status in DONE_WITH_DATE:
        if not outcome.mode:
            add("mode", _("Choose how the assessment was done."))
        unknown = [name for name in outcome.questionnaires if name not in questionnaires]
        if unknown:
            add("questionnaires", _("Choose questionnaires from the list."))
        if outcome.status == AssessmentStatus.COMPLETED and not outcome.questionnaires:
            add("questionnaires", _("Tick the questionnaires collected."))
        if outcome.status == AssessmentStatus.PARTLY and not outcome.details.strip():
            add("details", _("Say what was not collected, and why."))
        if not assessment.is_baseline and not outcome.arm_guess:
            add("arm_guess", _('Answer which arm you think the family is in; "don\'t know" is an answer.'))
    if outcome.status == AssessmentStatus.MISSED:
        if not outcome.reason:
            add("reason", _("Choose why the assessment was missed."))
        elif outcome.reason == "other" and not outcome.details.strip():
            add("details", _("Say why the assessment was missed."))
    if errors:
        raise ValidationError(errors)
    return outside


def _date(day: date) -> str:
    from django.utils.formats import date_format

    return date_format(day, "SHORT_DATE_FORMAT")


def assessment_record(
    *,
    assessment: Assessment,
    outcome: Outcome,
    recorded_by: User,
    token: uuid.UUID,
    correction_reason: str = "",
) -> Assessment:
    """Record what happened at an assessment (an outcome assessor of the family's site), or correct what was
    recorded (with a reason; the history keeps what it said before). A stopped assessment is final."""
    if not can_record(recorded_by, assessment.family):
        raise PermissionDenied
    with transaction.atomic():
        family, assessment = _locked_assessment(assessment)
        if assessment.submission_token == token:
            return assessment  # this form's first submission made it (a double click, a reload)
        if assessment.status == AssessmentStatus.STOPPED:
            raise ValidationError(
                _("This assessment was stopped on %(date)s (%(reason)s) and can no longer be recorded.")
                % {
                    "date": _date(assessment.stopped_on) if assessment.stopped_on else "",
                    "reason": assessment.get_stop_reason_display(),
                }
            )
        correcting = assessment.is_recorded
        correction_reason = correction_reason.strip()
        if correcting and not correction_reason:
            raise ValidationError(
                {
                    "correction_reason": _("This assessment is already recorded (%(status)s). Say why you correct it.")
                    % {"status": assessment.get_status_display()}
                }
            )
        outside = _check_outcome(family, assessment, outcome, TrialSettings.current().questionnaires)
        done = outcome.status in DONE_WITH_DATE
        assessment.status = outcome.status
        assessment.done_on = outcome.done_on
        assessment.mode = outcome.mode if done else ""
        assessment.questionnaires = list(outcome.questionnaires) if done else []
        assessment.reason = outcome.reason if outcome.status == AssessmentStatus.MISSED else ""
        assessment.details = outcome.details.strip()
        assessment.outside_window = outside
        assessment.recorded_by = recorded_by
        assessment.recorded_at = timezone.now()
        assessment.submission_token = token
        try:
            save_as(assessment, recorded_by, reason=correction_reason if correcting else "")
        except (IntegrityError, InternalError) as error:
            raise _refusal(error) from error
        # Its reminders leave the assessors' inboxes, and those not sent yet are never sent.
        messages_resolve(about=reminder_about(assessment.pk))
        if done and not assessment.is_baseline:
            guess = BlindingGuess.objects.filter(assessment=assessment).first() or BlindingGuess(assessment=assessment)
            guess.guess, guess.guessed_by = outcome.arm_guess, recorded_by
            save_as(guess, recorded_by)
    return assessment


def _refusal(error: Exception) -> ValidationError:
    if STOPPED_IS_FINAL in str(error):
        return ValidationError(_("This assessment was stopped and can no longer be recorded."))
    return ValidationError(_("The assessment could not be saved as given. Check what you entered."))


def assessment_book(*, assessment: Assessment, booked_on: date | None, booked_by: User) -> Assessment:
    """Set (or clear, with None) the date an assessor booked with the family. Only for an assessment not yet
    recorded; the date is not in the past."""
    if not can_record(booked_by, assessment.family):
        raise PermissionDenied
    with transaction.atomic():
        _family, assessment = _locked_assessment(assessment)
        if assessment.status != AssessmentStatus.SCHEDULED:
            raise ValidationError(
                _("This assessment is %(status)s: there is nothing to book.")
                % {"status": assessment.get_status_display()}
            )
        if booked_on is not None and booked_on < today():
            raise ValidationError({"booked_on": _("A booking cannot be in the past.")})
        if assessment.booked_on == booked_on:
            return assessment  # a resubmitted form, or nothing to change
        assessment.booked_on = booked_on
        save_as(assessment, booked_by)
    return assessment


def family_lose_to_follow_up(
    *, family: Family, lost_on: date, reason: str, details: str, recorded_by: User, token: uuid.UUID
) -> LostToFollowUp:
    """Record that the assessors can no longer reach a randomised family: its remaining schedule stops from
    `lost_on` (the family stays randomised and is analysed in its arm)."""
    if not can_record(recorded_by, family):
        raise PermissionDenied
    with transaction.atomic():
        family = lock_family(family)
        existing = LostToFollowUp.objects.filter(submission_token=token).first()
        if existing is not None and existing.family_id == family.pk:
            return existing
        if LostToFollowUp.objects.filter(family=family).exists():
            raise ValidationError(_("%(study_id)s is already lost to follow-up.") % {"study_id": family.study_id})
        if family.status != FamilyStatus.RANDOMISED:
            raise ValidationError(
                _("Only a randomised family can be lost to follow-up; %(study_id)s is %(status)s.")
                % {"study_id": family.study_id, "status": family.get_status_display().lower()}
            )
        errors = {}
        start = randomisation_date(family)
        if lost_on > today():
            errors["lost_on"] = _("The date cannot be in the future.")
        elif start is not None and lost_on < start:
            errors["lost_on"] = _("The date cannot be before the family's randomisation (%(date)s).") % {
                "date": _date(start)
            }
        if reason == "other" and not details.strip():
            errors["details"] = _("Say why the family is lost to follow-up.")
        if errors:
            raise ValidationError(errors)
        lost = LostToFollowUp(
            family=family,
            lost_on=lost_on,
            reason=reason,
            details=details.strip(),
            recorded_by=recorded_by,
            submission_token=token,
        )
        save_as(lost, recorded_by)
        _stop_from(family, lost_on, StopReason.LOST, recorded_by)
    return lost
