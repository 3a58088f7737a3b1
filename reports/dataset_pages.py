"""The analysis datasets page (`/reports/datasets/`): choose a dataset, a format, labels or codes, shifted dates and
a site, and download; the codebook below. For data managers and the PI (every site); anyone blinded gets no arm,
no dose, no guesses and no contacts (reports/datasets.py). Every download is an audit event."""

import logging
from collections.abc import Callable
from typing import cast

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User as Account
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reports import dataset_files
from reports.datasets import DATASET_TITLES, ExportScope, build_dataset, codebook, dataset_keys
from reports.models import MAX_SHIFT_DAYS, MIN_SHIFT_DAYS
from trial import dates
from trial.events import record_event
from trial.models import EventKind, Site
from trial.navigation import MenuItem, register_menu_item
from trial.roles import AuthenticatedHttpRequest, Role, User, has_role, is_blinded, require_role, sites_for

logger = logging.getLogger(__name__)
# A file that could not be written (a full disk: Excel, Stata and SPSS files go through temporary files): the page's
# and the API's words (templates/reports/download_failed.html says the same).
FILE_NOT_WRITTEN = gettext_lazy(
    "The server could not write the file just now (its disk may be full); the error has been logged. Try the "
    "download again later, and tell the trial's administrator if it happens again."
)

DATASET_ROLES = (Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR)


class FileNotWritten(Exception):
    """A dataset file could not be written: Excel, Stata and SPSS files go through temporary files, so a full disk
    fails them (CSV is streamed). Logged where it happens; the page and the API each answer it in their own form,
    for that download only (the attempt stays in the audit log: someone asked for the data)."""


def _written(make: Callable[[], bytes]) -> bytes:
    try:
        return make()
    except OSError as error:
        logger.exception("A dataset file could not be written")
        raise FileNotWritten from error


FORMAT_CHOICES = [
    (dataset_files.CSV, gettext_lazy("CSV")),
    (dataset_files.XLSX, gettext_lazy("Excel (every dataset and the codebook)")),
    (dataset_files.DTA, gettext_lazy("Stata (.dta)")),
    (dataset_files.SAV, gettext_lazy("SPSS (.sav)")),
]
CODES, LABELS = "codes", "labels"


def can_download_datasets(user: User) -> bool:
    return has_role(user, *DATASET_ROLES)


class DatasetForm(forms.Form):
    dataset = forms.ChoiceField(label=gettext_lazy("Dataset"))
    file_format = forms.ChoiceField(label=gettext_lazy("Format"), choices=FORMAT_CHOICES, initial=dataset_files.CSV)
    values = forms.ChoiceField(
        label=gettext_lazy("Coded values as"),
        choices=[(CODES, gettext_lazy("codes")), (LABELS, gettext_lazy("labels (in this page's language)"))],
        initial=CODES,
        widget=forms.RadioSelect,
        help_text=gettext_lazy("Stata and SPSS files always hold integer codes with value labels."),
    )
    shifted = forms.BooleanField(label=gettext_lazy("Shift dates"), required=False)
    site = forms.ModelChoiceField(
        label=gettext_lazy("Site"), queryset=Site.objects.none(), required=False, empty_label=gettext_lazy("All sites")
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.blinded = is_blinded(user)
        dataset = cast(forms.ChoiceField, self.fields["dataset"])
        dataset.choices = [(key, DATASET_TITLES[key]) for key in dataset_keys(blinded=self.blinded)]
        if self.blinded:
            # Contacts exist only for intervention families: they would reveal the arm.
            dataset.error_messages["invalid_choice"] = _(
                "Choose a dataset from the list. The contacts dataset reveals the arm: it is not available to "
                "someone who is blinded."
            )
        cast(forms.ModelChoiceField, self.fields["site"]).queryset = sites_for(user, *DATASET_ROLES).order_by("code")
        self.fields["shifted"].help_text = _(
            "Every date of a family moves the same number of days earlier (between %(min)s and %(max)s, drawn once "
            "per family and kept, so that datasets still join); families move by different numbers of days."
        ) % {"min": MIN_SHIFT_DAYS, "max": MAX_SHIFT_DAYS}


def _file_name(key: str, *, file_format: str, site: Site | None, shifted: bool, labels: bool) -> str:
    parts = ["familypartner", key, dates.today().isoformat()]
    if site is not None:
        parts.append(site.code.lower())
    if shifted:
        parts.append("dates-shifted")
    if labels and file_format in (dataset_files.CSV, dataset_files.XLSX):
        parts.append("labels")
    return "_".join(parts) + "." + file_format


def _note(*, shifted: bool, site: Site | None) -> str:
    covered = _("site %(site)s") % {"site": site.code} if site is not None else _("all sites")
    if shifted:
        return _(
            "Family Partner trial, %(covered)s, %(today)s. Dates shifted: every date of a family is moved the same "
            "number of days earlier (%(min)s to %(max)s days, a different number for each family)."
        ) % {"covered": covered, "today": dates.today().isoformat(), "min": MIN_SHIFT_DAYS, "max": MAX_SHIFT_DAYS}
    return _("Family Partner trial, %(covered)s, %(today)s. Dates as recorded.") % {
        "covered": covered,
        "today": dates.today().isoformat(),
    }


@login_required
def datasets(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The page, and the download once the form is submitted (GET: a download changes no research record)."""
    require_role(request, *DATASET_ROLES)
    blinded = is_blinded(request.user)
    form = DatasetForm(request.GET if "dataset" in request.GET else None, user=request.user)
    if form.is_bound and form.is_valid():
        try:
            return _download(request, form.cleaned_data)
        except FileNotWritten:
            return render(request, "reports/download_failed.html", {"back": reverse("reports:datasets")}, status=503)
    return render(
        request,
        "reports/datasets.html",
        {
            "form": form,
            "blinded": blinded,
            "codebook": codebook(ExportScope(site_ids=None, blinded=blinded)),
        },
    )


def _download(request: AuthenticatedHttpRequest, chosen: dict) -> HttpResponse | StreamingHttpResponse:
    return dataset_download(
        user=request.user,
        key=chosen["dataset"],
        file_format=chosen["file_format"],
        site=chosen["site"],
        shifted=chosen["shifted"],
        labels=chosen["values"] == LABELS,
    )


def dataset_download(
    *,
    user: Account,
    key: str,
    file_format: str,
    site: Site | None,
    shifted: bool,
    labels: bool,
    **audit_details: str,
) -> HttpResponse | StreamingHttpResponse:
    """The chosen dataset as a file response (CSV streamed a chunk at a time; Excel holds every dataset and the
    codebook), recorded as a DATASET_DOWNLOADED event first: for the page and the API alike (the API adds the
    token's name to the event's `audit_details`). Blinded or not is the user's own (`is_blinded`), never the
    caller's to say. `key` is one of `dataset_keys(blinded=...)` for the user, and `site` one they may download."""
    blinded = is_blinded(user)
    scope = ExportScope(site_ids=None if site is None else frozenset({site.pk}), blinded=blinded, shifted=shifted)
    record_event(
        kind=EventKind.DATASET_DOWNLOADED,
        user=user,
        site=site,
        subject=key if file_format != dataset_files.XLSX else "all",
        dataset=key if file_format != dataset_files.XLSX else ",".join(dataset_keys(blinded=blinded)),
        format=file_format,
        labels=labels,
        shifted=shifted,
        site_filter=site.code if site is not None else "",
        blinded=blinded,
        **audit_details,
    )
    note = _note(shifted=shifted, site=site)
    if file_format == dataset_files.XLSX:
        name = _file_name("datasets", file_format=file_format, site=site, shifted=shifted, labels=labels)
        content = _written(lambda: dataset_files.excel_workbook(codebook(scope), labels=labels, note=note))
        return _attachment(HttpResponse(content, content_type=dataset_files.CONTENT_TYPES[file_format]), name)
    name = _file_name(key, file_format=file_format, site=site, shifted=shifted, labels=labels)
    dataset = build_dataset(key, scope)
    if file_format == dataset_files.CSV:
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            dataset_files.csv_lines(dataset, labels=labels), content_type=dataset_files.CONTENT_TYPES[file_format]
        )
        return _attachment(response, name)
    content = _written(lambda: dataset_files.statistical_file(dataset, file_format, note=note))
    return _attachment(HttpResponse(content, content_type=dataset_files.CONTENT_TYPES[file_format]), name)


def _attachment(response, name: str):
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns: list[URLPattern] = [
    path("datasets/", datasets, name="datasets"),
]


def register() -> None:
    """Menu items and other registrations of this part, called from ReportsConfig.ready()."""
    register_menu_item(MenuItem(gettext_lazy("Datasets"), "reports:datasets", can_download_datasets, 61))
