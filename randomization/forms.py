from django import forms
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from trial.forms import PersonChoiceField, WholeNumbersField
from trial.models import Site


class RandomiseForm(forms.Form):
    """The researcher confirms the family and its site (the stratum) before the arm is drawn."""

    site = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        error_messages={"required": _("Tick the box to confirm the family and its site.")},
    )

    def __init__(self, *args, study_id: str, site: Site, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("site", site.code)
        self.fields["confirm"].label = _(
            "I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s)."
        ) % {"study_id": study_id, "site": site.name, "code": site.code}

    def clean_site(self) -> Site:
        site = Site.objects.filter(code=self.cleaned_data["site"]).first()
        if site is None:
            raise forms.ValidationError(_("The form has expired; reload the page."))
        return site


class AnnotationForm(forms.Form):
    reason = forms.CharField(
        label=_("Why was this randomisation a mistake?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("The family stays in its arm and is analysed there (intention to treat)."),
    )


class UnblindForm(forms.Form):
    user = PersonChoiceField(
        label=_("Reveal the arm to"),
        queryset=User.objects.none(),
        empty_label=_("Choose a blinded outcome assessor"),
    )
    reason = forms.CharField(
        label=_("Reason for breaking the blind"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )

    def __init__(self, *args, assessors: QuerySet[User], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = assessors


class BlockSizesField(WholeNumbersField):
    """Block sizes typed as "2, 4, 6"; kept once each, smallest first."""

    def __init__(self, **kwargs):
        super().__init__(
            # The design's own checks name what is wrong with a size (too small, too large, not a multiple).
            min_value=0,
            max_value=999,
            label=_("Block sizes"),
            help_text=_("Sizes drawn at random for each block, separated by commas, for example 2, 4, 6."),
            max_length=100,
            **kwargs,
        )

    def to_python(self, value) -> list[int]:  # type: ignore[override]  # numbers typed as text
        return sorted(set(super().to_python(value)))


class DesignReasonField(forms.CharField):
    """Asked on the confirmation page when the design has a single block size (the service requires it then)."""

    def __init__(self, **kwargs):
        super().__init__(
            label=_("Why a single block size?"),
            help_text=_(
                "With one block size, anyone who knows it can foresee the last entry of every block. Say why "
                "this design is chosen all the same; the reason is kept with the list."
            ),
            widget=forms.Textarea(attrs={"rows": 3}),
            required=False,
            max_length=2000,
            **kwargs,
        )


class GenerateForm(forms.Form):
    site = forms.ModelChoiceField(label=_("Site (stratum)"), queryset=Site.objects.none(), empty_label=None)
    block_sizes = BlockSizesField()
    ratio_intervention = forms.IntegerField(label=_("Ratio: intervention"), min_value=1, max_value=9)
    ratio_control = forms.IntegerField(label=_("Ratio: control"), min_value=1, max_value=9)
    length = forms.IntegerField(
        label=_("Length"),
        required=False,
        min_value=1,
        help_text=_("Leave empty for the least allowed: the site's expected recruitment plus the margin."),
    )
    design_reason = DesignReasonField()

    def __init__(self, *args, sites: QuerySet[Site], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["site"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = sites


class ExtendForm(forms.Form):
    additional = forms.IntegerField(label=_("Entries to add (at least)"), min_value=1, max_value=2000)
    block_sizes = BlockSizesField()
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    design_reason = DesignReasonField()


class UnsealRequestForm(forms.Form):
    reason = forms.CharField(
        label=_("Why unseal the list now?"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    confirm = forms.BooleanField(
        label=_("I understand that no family can be randomised from the list once it is unsealed."),
        error_messages={"required": _("Tick the box to confirm that recruitment from this list has ended.")},
    )


class ReviewForm(forms.Form):
    finding = forms.CharField(
        label=_("What was found"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        help_text=_("What caused the findings, and what it means for the families randomised from the list."),
    )
    decision = forms.CharField(
        label=_("Decision"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("What was decided, and why the list may allocate again."),
    )
