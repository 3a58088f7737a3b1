"""The assessors' forms: input parsing only (the rules are followups.services')."""

from typing import cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from followups.models import (
    RECORDED,
    ArmGuess,
    Assessment,
    AssessmentMode,
    AssessmentStatus,
    LostReason,
    MissedReason,
)
from followups.services import Outcome
from followups.states import State
from trial.forms import DateInput, SubmissionTokenMixin
from trial.models import Site, TrialSettings

GUESSES = {"partner": ArmGuess.INTERVENTION, "usual": ArmGuess.CONTROL, "unsure": ArmGuess.DONT_KNOW}


class RecordForm(SubmissionTokenMixin):
    status = forms.ChoiceField(
        label=_("What happened"),
        choices=[(s.value, s.label) for s in RECORDED],
        widget=forms.RadioSelect,
    )
    done_on = forms.DateField(
        label=_("Date"),
        widget=DateInput,
        initial=timezone.localdate,
        help_text=_("The day it was done, or the day it was found missed or refused."),
    )
    mode = forms.ChoiceField(
        label=_("How"),
        choices=AssessmentMode.choices,
        widget=forms.RadioSelect,
        required=False,
        help_text=_("For a completed or partly completed assessment."),
    )
    questionnaires = forms.MultipleChoiceField(
        label=_("Questionnaires collected"), widget=forms.CheckboxSelectMultiple, required=False
    )
    reason = forms.ChoiceField(
        label=_("Why it was missed"),
        choices=[("", "---------"), *MissedReason.choices],
        required=False,
    )
    details = forms.CharField(
        label=_("Details"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required for a partly completed assessment: what was not collected, and why."),
    )
    # The answers in words of their own, and codes of their own: the arms' labels and codes appear on no page an
    # assessor opens (tests/test_blinding.py looks for them), and the answer is stored as an ArmGuess.
    arm_guess = forms.TypedChoiceField(
        label=_("Which arm do you think this family is in?"),
        choices=[
            ("partner", _("With extra home-visiting support")),
            ("usual", _("Usual services only")),
            ("unsure", _("Don't know")),
        ],
        coerce=lambda answer: GUESSES[answer],
        empty_value="",
        widget=forms.RadioSelect,
        required=False,
        help_text=_("Your honest guess, for the trial's blinding index. It is never shown to anyone."),
    )
    confirm_outside_window = forms.BooleanField(
        label=_("The date is outside the window: record it anyway, flagged as outside the window."), required=False
    )
    correction_reason = forms.CharField(
        label=_("Reason for the correction"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, questionnaires: list[str], baseline: bool, correcting: bool, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["questionnaires"]).choices = [
            (name, name) for name in questionnaires
        ]
        if baseline:
            # The guess is asked at follow-ups only: at baseline the family has not been randomised.
            del self.fields["arm_guess"]
        if not correcting:
            del self.fields["correction_reason"]
        else:
            self.fields["correction_reason"].required = True

    @classmethod
    def for_assessment(cls, assessment: Assessment, data=None) -> "RecordForm":
        """The form for recording (or correcting) `assessment`, as the page and the API both use it: the trial's
        questionnaires (and any this assessment already holds), the guess only after baseline, a reason for a
        correction."""
        choices = list(TrialSettings.current().questionnaires)
        choices += [name for name in assessment.questionnaires if name not in choices]
        initial = {}
        if assessment.is_recorded:
            initial = {
                "status": assessment.status,
                "done_on": assessment.done_on,
                "mode": assessment.mode,
                "questionnaires": assessment.questionnaires,
                "reason": assessment.reason,
            }
        return cls(
            data,
            initial=initial,
            questionnaires=choices,
            baseline=assessment.is_baseline,
            correcting=assessment.is_recorded,
        )

    def outcome(self, assessment: Assessment) -> Outcome:
        """What the valid form records on `assessment`."""
        data = self.cleaned_data
        details = data["details"]
        if assessment.is_recorded and not details and assessment.details:
            # Free text written after randomisation is not shown to a blinded assessor; left empty in a
            # correction, it stays as it was.
            details = assessment.details
        return Outcome(
            status=data["status"],
            done_on=data["done_on"],
            mode=data["mode"],
            questionnaires=list(data["questionnaires"]),
            reason=data["reason"],
            details=details,
            arm_guess=data.get("arm_guess", ""),
            confirm_outside_window=data["confirm_outside_window"],
        )


class BookingForm(forms.Form):
    booked_on = forms.DateField(label=_("Booked for"), widget=DateInput, required=False)
    clear = forms.BooleanField(required=False, widget=forms.HiddenInput)


class LostForm(SubmissionTokenMixin):
    lost_on = forms.DateField(label=_("Lost to follow-up on"), widget=DateInput, initial=timezone.localdate)
    reason = forms.ChoiceField(label=_("Reason"), choices=LostReason.choices)
    details = forms.CharField(
        label=_("Details"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class GridFilterForm(forms.Form):
    site: "forms.ModelChoiceField[Site]" = forms.ModelChoiceField(
        queryset=None, required=False, label=_("Site"), empty_label=_("All sites")
    )
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any state")), *State.choices])

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Site]", self.fields["site"]).queryset = sites


__all__ = ["AssessmentStatus"]
