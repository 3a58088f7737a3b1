"""The form that makes a personal API token (input parsing only; the rules are `api.tokens.token_create`'s)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import Scope
from api.tokens import DEFAULT_DAYS, MAX_DAYS, NAME_MAX_LENGTH


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=NAME_MAX_LENGTH,
        help_text=_("What will use it, so that you know it again: “analysis script”, “REDCap import”."),
    )
    days = forms.IntegerField(label=_("Expires after (days)"), min_value=1, max_value=MAX_DAYS, initial=DEFAULT_DAYS)
    scopes = forms.MultipleChoiceField(
        label=_("What it may do besides reading"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Every token reads what you may read. Give it no more than the script needs."),
    )

    def __init__(self, *args, allowed: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the scopes the user's roles allow are offered (read is always held, so it is no choice).
        scopes = self.fields["scopes"]
        assert isinstance(scopes, forms.MultipleChoiceField)
        scopes.choices = [
            (scope.value, scope.label) for scope in Scope if scope != Scope.READ and scope.value in allowed
        ]
