"""The audit log's pages: `/reports/audit/` (filters, keyset pages) and its CSV export (streamed, recorded)."""

import re
from collections.abc import Iterator
from datetime import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User as Account
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reports.audit import (
    AuditFilters,
    AuditRow,
    Cursor,
    audit_page,
    audit_rows,
    kind_choices,
    may_read_audit_log,
    time_bounds,
)
from reports.cells import safe_cell, streaming_csv_writer
from trial.events import record_event
from trial.forms import DateInput
from trial.models import EventKind, Site
from trial.navigation import MenuItem, register_menu_item
from trial.roles import AuthenticatedHttpRequest

STUDY_ID = re.compile(r"[A-Z]{3}-[0-9]{1,6}")
FIRST_YEAR, LAST_YEAR = 2000, 2200


class DayOrMomentField(forms.DateField):
    """A day (2026-03-01, or as the page's date input sends it) or a moment (2026-03-01T14:30, with or without an
    offset; without one, in the trial's time zone), as REDCap's exportLogging takes them."""

    def to_python(self, value):
        if isinstance(value, str) and "T" in value.strip():
            text = value.strip()
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid") from None
            if timezone.is_naive(moment):
                try:
                    moment = timezone.make_aware(moment, timezone.get_default_timezone())
                except (ValueError, OverflowError):
                    raise ValidationError(self.error_messages["invalid"], code="invalid") from None
            return self._within_years(moment)
        return self._within_years(super().to_python(value))

    def _within_years(self, value):
        # Far years overflow when a day becomes the moments around it (and no audit row is that old or young).
        if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValidationError(
                _("Give a date between %(first)s and %(last)s.") % {"first": FIRST_YEAR, "last": LAST_YEAR},
                code="invalid",
            )
        return value


class AuditFilterForm(forms.Form):
    """The audit log's filters (GET). Anything it cannot read is an error on the page, never a 500."""

    user = forms.CharField(
        label=gettext_lazy("User"), required=False, max_length=150, help_text=gettext_lazy("Username")
    )
    family = forms.CharField(label=gettext_lazy("Family"), required=False, max_length=16, help_text="OEI-007")
    site = forms.ModelChoiceField(
        label=gettext_lazy("Site"),
        queryset=Site.objects.order_by("name"),
        required=False,
        to_field_name="code",
        empty_label=gettext_lazy("All sites"),
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    date_from = DayOrMomentField(label=gettext_lazy("From"), required=False, widget=DateInput)
    date_to = DayOrMomentField(label=gettext_lazy("To"), required=False, widget=DateInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = [("", _("Everything")), *kind_choices()]

    def clean_user(self) -> str:
        username = self.cleaned_data["user"].strip()
        if username and not get_user_model().objects.filter(username=username).exists():
            raise ValidationError(_("No account has this username."))
        return username

    def clean_family(self) -> str:
        study_id = self.cleaned_data["family"].strip().upper()
        if study_id and not STUDY_ID.fullmatch(study_id):
            raise ValidationError(_("Give a study ID such as OEI-007."))
        return study_id

    def clean_before(self) -> Cursor | None:
        text = self.cleaned_data["before"]
        if not text:
            return None
        try:
            return Cursor.parse(text)
        except ValueError:
            raise ValidationError(_("This link to older entries is not valid; start again from the newest.")) from None

    def clean(self):
        cleaned = super().clean() or {}
        start, end = time_bounds(AuditFilters(date_from=cleaned.get("date_from"), date_to=cleaned.get("date_to")))
        if start and end and start >= end:
            self.add_error("date_to", _("The end date must not be before the start date."))
        # The hidden field's error would not show: show it above the form.
        if self.errors.get("before"):
            self.add_error(None, self.errors.pop("before"))
        return cleaned

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            username=data.get("user", ""),
            study_id=data.get("family", ""),
            site=data.get("site"),
            kind=data.get("kind", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def _require_reader(request: AuthenticatedHttpRequest) -> None:
    if not may_read_audit_log(request.user):
        raise PermissionDenied


def _query_without(query: QueryDict, *names: str) -> str:
    query = query.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@login_required
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every change and export, newest first, filtered (PI, data managers, administrators)."""
    _require_reader(request)
    form = AuditFilterForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        cleaned = form.cleaned_data if form.is_bound else {}
        page = audit_page(
            viewer=request.user,
            filters=form.filters() if form.is_bound else AuditFilters(),
            cursor=cleaned.get("before"),
        )
    return render(
        request,
        "reports/audit.html",
        {
            "form": form,
            "page": page,
            "query": _query_without(request.GET, "before"),
            "older": page.next_cursor if page else None,
            "deeper": bool(request.GET.get("before")),
        },
    )


def _csv_lines(rows: Iterator[AuditRow], language: str) -> Iterator[str]:
    # Runs while the response streams, after the view returned: in the language of the request.
    with translation.override(language):
        yield from _csv_lines_now(rows)


def _csv_lines_now(rows: Iterator[AuditRow]) -> Iterator[str]:
    writer = streaming_csv_writer()
    yield writer.writerow([_("When"), _("User"), _("What"), _("Study ID"), _("Site"), _("Reason"), _("Fields changed")])
    for row in rows:
        when = timezone.localtime(row.when)
        yield writer.writerow(
            [
                safe_cell(value)
                for value in (
                    when.date().isoformat() if row.date_only else when.isoformat(timespec="seconds"),
                    row.who,
                    row.what,
                    row.study_id,
                    row.site,
                    row.reason,
                    "; ".join(row.fields),
                )
            ]
        )


@login_required
def audit_csv(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered log as CSV, streamed a chunk at a time, and recorded as an audit event of its own."""
    _require_reader(request)
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "reports/audit.html", {"form": form, "page": None, "query": "", "older": None})
    return audit_csv_response(user=request.user, filters=form.filters())


def audit_csv_response(*, user: Account, filters: AuditFilters, **audit_details: str) -> StreamingHttpResponse:
    """The log as `filters` keep it, as CSV streamed a chunk at a time, recorded first as an AUDIT_LOG_EXPORTED
    event with the filters: for the page and the API alike (the API adds the token's name to `audit_details`)."""
    record_event(
        kind=EventKind.AUDIT_LOG_EXPORTED, user=user, site=filters.site, filters=filters.as_details(), **audit_details
    )
    response = StreamingHttpResponse(
        _csv_lines(audit_rows(viewer=user, filters=filters), translation.get_language()),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response


urlpatterns: list[URLPattern] = [
    path("audit/", audit_log, name="audit"),
    path("audit/csv/", audit_csv, name="audit_csv"),
]


def register() -> None:
    """Menu items and other registrations of this part, called from ReportsConfig.ready()."""
    register_menu_item(MenuItem(gettext_lazy("Audit log"), "reports:audit", may_read_audit_log, 62))
