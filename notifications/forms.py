from django import forms
from django.utils.translation import gettext_lazy as _

from notifications.kinds import all_kinds
from notifications.models import Language, MessageStatus


class ProfileForm(forms.Form):
    email = forms.EmailField(
        label=_("Your e-mail address"),
        max_length=254,
        error_messages={"required": _("Enter your e-mail address: reminders are sent to it.")},
        help_text=_("Reminders and alerts are sent here. They carry study IDs and site codes, never names."),
    )
    language = forms.ChoiceField(
        label=_("Language of your messages"),
        choices=Language.choices,
        help_text=_("Your e-mails are written in this language."),
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it cancelled?"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=200,
        error_messages={"required": _("Give the reason for cancelling the message.")},
        help_text=_("For example: the assessment was booked by phone, or the reminder went to the wrong person."),
    )


def _status_choices() -> list[tuple[str, str]]:
    return [("", str(_("All statuses"))), *((value, str(label)) for value, label in MessageStatus.choices)]


def _kind_choices(codes: set[str] | None = None) -> list[tuple[str, str]]:
    kinds = sorted(
        ((kind.code, str(kind.label)) for kind in all_kinds() if codes is None or kind.code in codes),
        key=lambda choice: choice[1],
    )
    return [("", str(_("All kinds"))), *kinds]


class LogFilterForm(forms.Form):
    """The send log's filters (a GET form): a value that is not a choice is ignored, not an error page."""

    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=_status_choices, widget=forms.Select(attrs={"class": "form-select"})
    )
    # A callable: the kinds the apps registered, when the form is made.
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=_kind_choices, widget=forms.Select(attrs={"class": "form-select"})
    )

    def __init__(self, *args, kinds: set[str] | None = None, **kwargs) -> None:
        """`kinds`: the kinds of the messages the user's log holds, the only ones offered (an assessor's list of
        kinds never names the Family Partner's work)."""
        super().__init__(*args, **kwargs)
        if kinds is not None:
            self.fields["kind"].choices = _kind_choices(kinds)  # type: ignore[attr-defined]
