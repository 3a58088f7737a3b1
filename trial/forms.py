"""Form pieces that every app's forms share."""

import re
import uuid

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from trial.models import TRIAL_SETTINGS_GROUPS, RecruitmentState, TrialSettings
from trial.roles import display_name


class DateInput(forms.DateInput):
    """A date typed in the page's own format: dd.mm.yyyy in Norwegian, yyyy-mm-dd in English.

    Not `<input type="date">`: that shows the browser's locale, not the page's, so a Norwegian page in
    an English browser would ask for mm/dd/yyyy (docs/decisions.md)."""

    def __init__(self, attrs=None):
        # No fixed format: Django renders the value in the active language's first DATE_INPUT_FORMATS.
        super().__init__(attrs={"autocomplete": "off", **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        # Translators: the date format users type, as a hint in empty date fields (Norwegian: dd.mm.åååå).
        context["widget"]["attrs"].setdefault("placeholder", _("yyyy-mm-dd"))
        return context


class YesNoField(forms.TypedChoiceField):
    """A required yes/no answer: an unticked checkbox cannot tell "no" from "not answered"."""

    widget = forms.RadioSelect

    def __init__(self, **kwargs):
        super().__init__(
            choices=[("yes", _("Yes")), ("no", _("No"))],
            coerce=lambda value: value == "yes",
            empty_value=None,
            **kwargs,
        )


class SubmissionTokenMixin(forms.Form):
    """A one-time token per rendered form: a resubmission (a double click, a reload) carries the
    same token, and the service returns what the first submission made instead of making it twice."""

    token = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={
            "required": _("The form has expired; reload the page."),
            "invalid": _("The form has expired; reload the page."),
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("token", uuid.uuid4())

    def full_clean(self) -> None:
        super().full_clean()
        # The token is a hidden field, whose errors no template shows: show them above the form.
        # (Django's private BaseForm._errors, which the stubs leave out.)
        token_errors = self._errors.pop("token", None) if self._errors else None  # type: ignore[attr-defined]
        if token_errors:
            self.add_error(None, ValidationError(list(token_errors)))


class WholeNumbersField(forms.CharField):
    """Whole numbers typed as "2, 4, 6" (commas, semicolons or spaces between them), each within the bounds.

    Only the digits 0-9 count: str.isdigit() also accepts "²" and other Unicode digits that int() refuses, and a
    number thousands of digits long would fail deep inside Python or the database; both are form errors here."""

    _PART = re.compile(r"[0-9]{1,6}")

    def __init__(self, *, min_value: int, max_value: int, max_count: int = 20, example: str = "2, 4, 6", **kwargs):
        self.min_value, self.max_value, self.max_count, self.example = min_value, max_value, max_count, example
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[int]:  # type: ignore[override]  # numbers typed as text
        text = super().to_python(value) or ""
        parts = [part for part in re.split(r"[\s,;]+", text) if part]
        if not parts and not self.required:
            return []
        if not parts or len(parts) > self.max_count or not all(self._PART.fullmatch(part) for part in parts):
            raise ValidationError(
                _("Give whole numbers separated by commas, for example %(example)s.") % {"example": self.example},
                code="invalid",
            )
        numbers = [int(part) for part in parts]
        if not all(self.min_value <= number <= self.max_value for number in numbers):
            raise ValidationError(
                _("Each number must lie between %(min)s and %(max)s.") % {"min": self.min_value, "max": self.max_value},
                code="out_of_range",
            )
        return numbers

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(number) for number in value)
        return value


class NamesField(forms.CharField):
    """Short names typed as "SDQ, PSI-SF" (commas or semicolons between them): letters, digits, spaces, hyphens
    and a few signs, each at most `max_name_length` characters, distinct, at most `max_count`."""

    _NAME = re.compile(r"[\w][\w .()/+-]*", re.UNICODE)

    def __init__(self, *, max_count: int = 20, max_name_length: int = 40, example: str = "SDQ, PSI-SF", **kwargs):
        self.max_count, self.max_name_length, self.example = max_count, max_name_length, example
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:  # type: ignore[override]  # names typed as text
        text = super().to_python(value) or ""
        names = [" ".join(part.split()) for part in re.split(r"[,;\n]+", text) if part.strip()]
        if not names and not self.required:
            return []
        if (
            not names
            or len(names) > self.max_count
            or not all(len(name) <= self.max_name_length and self._NAME.fullmatch(name) for name in names)
        ):
            raise ValidationError(
                _("Give short names separated by commas, for example %(example)s.") % {"example": self.example},
                code="invalid",
            )
        if len({name.casefold() for name in names}) != len(names):
            raise ValidationError(_("Give each name once."), code="duplicate")
        return names

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(name) for name in value)
        return value


class LoginForm(AuthenticationForm):
    """Django's login form, with its username's length checked: Django only sets the field's max_length after
    building it (so no validator checks it), and django-axes stores a failed login's username in a column of 255
    characters, where a longer one was a database error (a 500)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(getattr(username, "max_length", None) or 150))


class TrialSettingsForm(forms.ModelForm):
    """The trial settings with the reason for changing them (the settings page and the admin).

    The two lists are typed as numbers ("3, 6, 12, 18"), not as JSON: JSON let a data manager (or anyone posting)
    send nested or huge structures that failed deep in the parser. The settings' own rules stay in
    TrialSettings.clean, which the model form runs."""

    follow_up_months = WholeNumbersField(
        label=_("follow-up time points (months after randomisation)"),
        min_value=1,
        max_value=60,
        example="3, 6, 12, 18",
        help_text=_("Whole months, for example 3, 6, 12, 18. Baseline is always collected."),
    )
    allocation_block_sizes = WholeNumbersField(
        label=_("allocation block sizes"),
        min_value=2,
        max_value=20,
        example="2, 4, 6",
        help_text=_("Block sizes drawn at random, for example 2, 4, 6; each a multiple of the ratio's sum."),
    )
    questionnaires = NamesField(
        label=_("questionnaires"),
        help_text=_("The questionnaires an assessor can mark as collected, for example SDQ, PSI-SF."),
    )
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the history with the change, for example a protocol amendment."),
    )

    class Meta:
        model = TrialSettings
        fields = [name for _group, names in TRIAL_SETTINGS_GROUPS for name in names]
        # Hours with the page's decimal mark ("6,00" in Norwegian); a point is accepted too.
        localized_fields = ["weekly_hours_target"]

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The fields in the settings' groups, for the page."""
        return [(str(label), [self[name] for name in names]) for label, names in TRIAL_SETTINGS_GROUPS]

    def changes(self) -> dict[str, object]:
        """The settings the user changed, with their new values."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name != "reason"}


class SiteRecruitmentForm(forms.Form):
    """A site's new recruitment state and why (trial.services.site_set_recruitment_state checks the rest)."""

    state = forms.ChoiceField(label=_("Recruitment"), choices=RecruitmentState.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Researchers of the site see it beside the state; it is kept in the site's history."),
    )


class PersonChoiceField(forms.ModelChoiceField):
    """A choice of user, shown by name."""

    def label_from_instance(self, obj) -> str:
        return display_name(obj)


def add_service_error(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on the field it names when the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


__all__ = [
    "NON_FIELD_ERRORS",
    "DateInput",
    "LoginForm",
    "PersonChoiceField",
    "SiteRecruitmentForm",
    "SubmissionTokenMixin",
    "TrialSettingsForm",
    "WholeNumbersField",
    "YesNoField",
    "add_service_error",
]
