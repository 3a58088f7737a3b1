"""The page every app uses for one form about one family (templates/families/family_form_page.html)."""

from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from families.models import Family


def family_form_page(
    request: HttpRequest,
    template: str,
    family: Family,
    form: Form,
    *,
    heading: str,
    submit_label: str,
    intro: str = "",
    **context,
) -> HttpResponse:
    """A family's one-form page (extending families/family_form_page.html): screening, consent, withdrawal,
    identifiers, the randomisation's annotation and unblinding, and the Family Partner's assignment and end."""
    context |= {"family": family, "form": form, "heading": heading, "submit_label": submit_label, "intro": intro}
    return render(request, template, context)
