import re
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from families.family_list import ListFilter
from families.models import (
    Consent,
    ConsentDecision,
    DeclineReason,
    Family,
    FamilyStatus,
    ReferralSource,
    StruggleArea,
    WithdrawalReason,
)
from families.selectors import FAMILY_SORTS
from families.services import Identifiers, check_children, check_date, check_parents
from families.validators import (
    validate_child_birth_date,
    validate_national_id_number,
    validate_parent_birth_year,
    validate_phone,
)
from trial.forms import DateInput, PersonChoiceField, SubmissionTokenMixin, YesNoField
from trial.models import Site, TrialSettings


class IdentifiersForm(forms.Form):
    """Direct identifiers: encrypted at rest, shown only to the family's site researchers."""

    contact_name = forms.CharField(label=_("Parent's full name"), max_length=200)
    national_id_number = forms.CharField(
        label=_("National identity number"),
        required=False,
        max_length=20,
        validators=[validate_national_id_number],
        help_text=_("11 digits. Optional."),
    )
    phone = forms.CharField(label=_("Phone"), required=False, max_length=30, validators=[validate_phone])
    address = forms.CharField(
        label=_("Address"), required=False, max_length=300, widget=forms.Textarea(attrs={"rows": 2})
    )
    other_members = forms.CharField(
        label=_("Other household members"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Names of the other parents and the children. Kept encrypted, like the fields above."),
    )

    def clean_national_id_number(self) -> str:
        return re.sub(r"\s", "", self.cleaned_data["national_id_number"])

    def identifiers(self) -> Identifiers:
        return Identifiers(**{name: self.cleaned_data[name] for name in IdentifiersForm.base_fields})


class RegistrationForm(SubmissionTokenMixin, IdentifiersForm):
    site: "forms.ModelChoiceField[Site]" = forms.ModelChoiceField(queryset=None, label=_("Site"), empty_label=None)
    referral_date = forms.DateField(label=_("Referral date"), widget=DateInput)
    referral_source = forms.ChoiceField(label=_("Referred by"), choices=ReferralSource.choices)

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Site]", self.fields["site"]).queryset = sites

    def clean_referral_date(self) -> date:
        # The service's date rule, checked here too so that it is shown with the form's other mistakes.
        referral_date = self.cleaned_data["referral_date"]
        try:
            check_date(referral_date, field="referral_date")
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return referral_date


class ParentForm(forms.Form):
    birth_year = forms.IntegerField(
        label=_("Parent's birth year"),
        required=False,
        validators=[validate_parent_birth_year],
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1900}),
    )


class ChildForm(forms.Form):
    birth_date = forms.DateField(
        label=_("Child's birth date"), required=False, validators=[validate_child_birth_date], widget=DateInput
    )


class BaseHouseholdFormSet(forms.BaseFormSet):
    """Blank rows are ignored. The household's rules (services.check_parents, check_children) are checked with
    the form's own, and their errors belong to the first row: the summary links there, and the field says why."""

    field_name = ""

    def values(self) -> list:
        return [form.cleaned_data[self.field_name] for form in self.forms if form.cleaned_data.get(self.field_name)]

    def check(self, values: list) -> None:
        raise NotImplementedError

    def clean(self) -> None:
        if any(self.errors) or self.non_form_errors():
            return  # the rows' own mistakes first: the household's rules judge the rows as entered
        try:
            self.check(self.values())
        except ValidationError as error:
            if not self.forms:
                raise ValidationError(error.messages) from None
            self.forms[0].add_error(self.field_name, error.messages)


class BaseParentFormSet(BaseHouseholdFormSet):
    field_name = "birth_year"

    def check(self, values: list) -> None:
        check_parents(values)


class BaseChildFormSet(BaseHouseholdFormSet):
    field_name = "birth_date"

    def check(self, values: list) -> None:
        check_children(values)


# formset_factory returns a subclass of `formset`; the stubs type it as a plain BaseFormSet.
ParentFormSet: type[BaseParentFormSet] = forms.formset_factory(  # type: ignore[assignment]
    ParentForm, formset=BaseParentFormSet, extra=2, max_num=4, absolute_max=4
)
ChildFormSet: type[BaseChildFormSet] = forms.formset_factory(  # type: ignore[assignment]
    ChildForm, formset=BaseChildFormSet, extra=3, max_num=12, absolute_max=12
)


class ScreeningForm(SubmissionTokenMixin):
    screened_on = forms.DateField(label=_("Screening date"), widget=DateInput, initial=timezone.localdate)
    involved_with_child_welfare = YesNoField(label=_("Is the family already involved with child welfare services?"))
    harmful_circumstances = YesNoField(label=_("Do the children live under potentially harmful circumstances?"))
    struggle_areas = forms.MultipleChoiceField(
        label=_("Areas the parents struggle in"),
        choices=StruggleArea.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    rescreening_reason = forms.CharField(
        label=_("Reason for screening again"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, family, **kwargs):
        super().__init__(*args, **kwargs)
        needed = TrialSettings.current().min_struggle_areas
        self.fields["struggle_areas"].help_text = ngettext(
            "Tick every area that applies: a family is eligible with at least %(count)s area.",
            "Tick every area that applies: a family is eligible with at least %(count)s areas.",
            needed,
        ) % {"count": needed}
        # Required for a family screened before, but checked by the service after it has looked up
        # the form's token: a double-clicked first screening must find the first, not ask for a reason.
        if not family.screenings.exists():
            del self.fields["rescreening_reason"]


class HouseholdCorrectionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the correction"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the family's timeline with the correction."),
    )


class ConsentForm(SubmissionTokenMixin):
    decision = forms.ChoiceField(
        label=_("The family's answer"), choices=ConsentDecision.choices, widget=forms.RadioSelect
    )
    decided_on = forms.DateField(label=_("Date"), widget=DateInput, initial=timezone.localdate)
    form_version = forms.CharField(
        label=_("Consent form version"),
        required=False,
        max_length=32,
        help_text=_("Required for a consent: the version printed on the signed form."),
    )
    obtained_by = PersonChoiceField(
        queryset=None, label=_("Consent obtained by"), required=False, help_text=_("Required for a consent.")
    )
    decline_reason = forms.ChoiceField(
        label=_("Reason for declining"),
        choices=[("", "---------"), *DeclineReason.choices],
        required=False,
        help_text=_("Required when the family declines."),
    )
    decline_details = forms.CharField(
        label=_("Details"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    new_decision_reason = forms.CharField(
        label=_("Reason for the new decision"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required: what made the family answer again."),
    )
    # The decision the page showed as the latest, so that a decision recorded meanwhile by a colleague is
    # noticed instead of silently replaced.
    replaces: "forms.ModelChoiceField[Consent]" = forms.ModelChoiceField(
        queryset=None,
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": _("The form has expired; reload the page.")},
    )

    def __init__(self, *args, family: Family, researchers, **kwargs):
        super().__init__(*args, **kwargs)
        cast(PersonChoiceField, self.fields["obtained_by"]).queryset = researchers
        cast("forms.ModelChoiceField[Consent]", self.fields["replaces"]).queryset = family.consents.all()
        latest = family.consent
        if latest is None:
            # A first answer: no reason to give. (Required after a decline, but checked by the service after it
            # has looked up the form's token, as the reason for screening again is.)
            del self.fields["new_decision_reason"]
        elif not self.is_bound:
            self.initial["replaces"] = latest.pk

    def clean(self) -> dict[str, Any]:
        # Form.clean() returns cleaned_data; the stubs also allow None, for overrides that return nothing.
        cleaned = cast(dict[str, Any], super().clean())
        if cleaned.get("decision") == ConsentDecision.CONSENTED:
            if not cleaned.get("form_version", "").strip():
                self.add_error("form_version", _("Enter the version of the consent form the family signed."))
            if not cleaned.get("obtained_by"):
                self.add_error("obtained_by", _("Choose who obtained the consent."))
        elif cleaned.get("decision") == ConsentDecision.DECLINED and not cleaned.get("decline_reason"):
            self.add_error("decline_reason", _("Choose the reason the family declined."))
        return cleaned


class WithdrawalForm(SubmissionTokenMixin):
    withdrawn_on = forms.DateField(label=_("Withdrawal date"), widget=DateInput)
    reason = forms.ChoiceField(label=_("Reason"), choices=WithdrawalReason.choices)
    details = forms.CharField(
        label=_("Details"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    data_may_be_kept = YesNoField(label=_("May the data collected so far be kept and analysed?"))


class FamilyFilterForm(forms.Form):
    q = forms.CharField(label=_("Study ID"), required=False, max_length=12)
    site: "forms.ModelChoiceField[Site]" = forms.ModelChoiceField(
        queryset=None, label=_("Site"), required=False, empty_label=_("All sites")
    )
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("Any status")), *FamilyStatus.choices], required=False
    )
    # Chosen with the column headings' links; kept when the filters change.
    sort = forms.ChoiceField(
        choices=[(f"{way}{key}", key) for key in FAMILY_SORTS for way in ("", "-")],
        required=False,
        widget=forms.HiddenInput,
    )

    def __init__(self, *args, sites, extra_filters: Sequence[ListFilter] = (), **kwargs):
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Site]", self.fields["site"]).queryset = sites
        # The apps above families add their filters for this user (families.family_list), after the status.
        for extra in extra_filters:
            self.fields[extra.name] = forms.ChoiceField(
                label=str(extra.label), choices=[("", _("Any")), *extra.choices], required=False
            )
        self.extra_filters = list(extra_filters)
