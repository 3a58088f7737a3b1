import re

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from trial.forms import DateInput, SubmissionTokenMixin
from visits import weeks
from visits.models import (
    MAX_CONTACT_QUARTERS,
    Assignment,
    ContactKind,
    Element,
    EndReason,
    PartnerProfile,
    PartnerStatus,
)
from visits.services import CONFIRM_IN_ERROR, NOT_SHOWN, ContactInput


class PartnerChoiceField(forms.ModelChoiceField):
    """A Family Partner, shown with their free slots (or that they are on leave or full)."""

    def label_from_instance(self, obj: PartnerProfile) -> str:
        if obj.status != PartnerStatus.ACTIVE:
            state = gettext("on leave")
        elif obj.free_slots == 0:
            state = gettext("no free slot")
        else:
            state = ngettext("%(count)s free slot", "%(count)s free slots", obj.free_slots) % {"count": obj.free_slots}
        return f"{obj} ({state})"


SHOWN_ASSIGNMENT = re.compile(r"[0-9]{1,18}")


class AssignForm(forms.Form):
    partner = PartnerChoiceField(
        label=_("Family Partner"), queryset=PartnerProfile.objects.none(), empty_label=_("Choose a Family Partner")
    )
    started_on = forms.DateField(label=_("Assigned from"), widget=DateInput)
    reason = forms.CharField(
        label=_("Why does the family change Family Partner?"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
    )

    # The assignment the form was made for ("none": no partner yet), so that a colleague's change meanwhile
    # is noticed (services.family_assign's `shown`).
    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    # Only for a family whose randomisation is marked "randomised in error" (services.family_assign checks it too).
    confirm_in_error = forms.BooleanField(
        label=_("Give this family a Family Partner all the same (it stays in its arm: intention to treat)"),
        error_messages={"required": CONFIRM_IN_ERROR},
    )

    def __init__(
        self,
        *args,
        partners: QuerySet[PartnerProfile],
        current: Assignment | None,
        in_error: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not in_error:
            del self.fields["confirm_in_error"]
        self.initial.setdefault("started_on", weeks.today())
        self.initial.setdefault("shown", str(current.pk) if current else "none")
        field = self.fields["partner"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = partners
        # A form made when the family had no partner stays that form: the service then tells that a colleague
        # assigned one meanwhile (instead of asking for a reason to replace a partner the user never saw).
        # Otherwise the reason is asked for, and required by the service only if the partner really changes:
        # the partner the family already has is the existing assignment, whatever else the form says.
        if current is None or (self.is_bound and self.data.get("shown", "").strip() == "none"):
            del self.fields["reason"]
        else:
            self.fields["reason"].help_text = _("Needed when you choose another Family Partner.")

    def clean_shown(self) -> int | None:
        value = self.cleaned_data["shown"].strip()
        if value == "none":
            return None
        if not value:
            return NOT_SHOWN  # an old form without the field: nothing to compare
        # ASCII digits only, and no more than a key has: str.isdigit() also takes "²", which int() refuses.
        if not SHOWN_ASSIGNMENT.fullmatch(value):
            raise forms.ValidationError(_("The form has expired; reload the page."), code="invalid")
        return int(value)


class EndInterventionForm(forms.Form):
    ended_on = forms.DateField(label=_("Last day of the intervention"), widget=DateInput)
    reason = forms.ChoiceField(label=_("Why did it end?"), choices=[("", "---------"), *EndReason.choices])
    details = forms.CharField(
        label=_("Details"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
        help_text=_("Needed for “Other”."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("ended_on", weeks.today())


def duration_label(quarters: int) -> str:
    """A duration as people say it: "45 min", "2 h", "1 h 15 min"."""
    hours, minutes = divmod(quarters * 15, 60)
    if not hours:
        return gettext("%(minutes)s min") % {"minutes": minutes}
    if not minutes:
        return gettext("%(hours)s h") % {"hours": hours}
    return gettext("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}


class ContactForm(SubmissionTokenMixin, forms.Form):
    """Made for a phone: big targets, a date that defaults to today, the duration as a list of quarter-hours."""

    # No inputmode="numeric": a phone's number pad has no "." for dd.mm.yyyy.
    contact_date = forms.DateField(label=_("Date"), widget=DateInput)
    duration_quarters = forms.TypedChoiceField(label=_("Duration"), coerce=int, choices=())
    kind = forms.ChoiceField(label=_("Kind of contact"), choices=ContactKind.choices, widget=forms.RadioSelect)
    elements = forms.MultipleChoiceField(
        label=_("Elements of the model it served"),
        choices=Element.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick at least one element of the model that the contact served.")},
    )
    notes = forms.CharField(
        label=_("Notes"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=10000,
        required=False,
        help_text=_("Seen only by you and the site's researchers; never exported."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("contact_date", weeks.today())
        field = self.fields["duration_quarters"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", gettext("Choose the duration"))] + [
            (quarters, duration_label(quarters)) for quarters in range(1, MAX_CONTACT_QUARTERS + 1)
        ]

    def contact_input(self) -> ContactInput:
        data = self.cleaned_data
        return ContactInput(
            contact_date=data["contact_date"],
            duration_quarters=data["duration_quarters"],
            kind=data["kind"],
            elements=list(data["elements"]),
            notes=data["notes"],
        )


class ContactCorrectionForm(ContactForm):
    reason = forms.CharField(
        label=_("Why is it corrected?"), widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False
    )

    def __init__(self, *args, needs_reason: bool, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["token"]
        if needs_reason:
            self.fields["reason"].required = True
        else:
            self.fields["reason"].help_text = _("Optional for a contact logged in the last days.")


class ContactVoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it voided?"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        error_messages={"required": _("Say why the contact is voided.")},
        help_text=_("For example: logged with the wrong family, or logged twice."),
    )


class PartnerStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=PartnerStatus.choices)
