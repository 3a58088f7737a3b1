"""The feasibility report: its page and its three downloads (PDF, Excel, CSV zip), for the same filters.

Who may open it: the principal investigator and the data managers (every site), researchers (their own sites).
The report is by arm throughout, so anyone blinded (holding the outcome-assessor role, whatever else they hold) is
refused, as are Family Partners, administrators and accounts without a role. The numbers come from
`reports.figures.build_report`; the renderers (reports/render/) only format them."""

import logging
from datetime import date

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from reports.figures import build_report
from reports.render import csvzip, pdf, xlsx
from reports.render.html import report_context
from reports.tables import Report, ReportFilters
from trial.events import record_event
from trial.forms import DateInput
from trial.models import EventKind, Site
from trial.navigation import MenuItem, register_menu_item
from trial.roles import AuthenticatedHttpRequest, Role, User, has_role, is_blinded, site_ids_for, sites_for

logger = logging.getLogger(__name__)

REPORT_ROLES = (Role.PRINCIPAL_INVESTIGATOR, Role.DATA_MANAGER, Role.RESEARCHER)
# The dates a report may cover: the trial's years, with room on both sides (a date typed as 0202 or 9999 would
# otherwise ask the figures for thousands of months).
EARLIEST = date(2000, 1, 1)


def may_open_report(user: User) -> bool:
    """Readers of the report: not blinded, and with a site to see (a researcher not yet a member of a site has
    none: every site's families are someone else's)."""
    if is_blinded(user) or not has_role(user, *REPORT_ROLES):
        return False
    site_ids = site_ids_for(user, *REPORT_ROLES)
    return site_ids is None or bool(site_ids)


def _latest() -> date:
    return date(timezone.localdate().year + 1, 12, 31)


class ReportForm(forms.Form):
    site: "forms.ModelChoiceField[Site]" = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False, to_field_name="code", label=_("Site")
    )
    start = forms.DateField(required=False, label=_("From"), widget=DateInput)
    end = forms.DateField(required=False, label=_("To"), widget=DateInput)
    language = forms.ChoiceField(choices=settings.LANGUAGES, required=False, label=_("Language of the downloads"))

    def __init__(self, data: QueryDict, *, user: User) -> None:
        # The form is always bound (the report shows at once, for no filter): the downloads' language defaults to
        # the page's, so that the select shows it and the download buttons send it.
        if not data.get("language"):
            data = data.copy()
            data["language"] = translation.get_language() or settings.LANGUAGE_CODE
        super().__init__(data)
        # None: every site (a trial-wide role); otherwise the researcher's own sites.
        self.site_ids = site_ids_for(user, *REPORT_ROLES)
        site_field = self.fields["site"]
        assert isinstance(site_field, forms.ModelChoiceField)
        site_field.queryset = sites_for(user, *REPORT_ROLES).order_by("code")
        site_field.empty_label = str(_("Whole trial") if self.site_ids is None else _("All my sites"))

    def _clean_day(self, name: str) -> date | None:
        day = self.cleaned_data.get(name)
        if day is not None and not EARLIEST <= day <= _latest():
            raise forms.ValidationError(
                _("Choose a date between %(earliest)s and %(latest)s."),
                params={"earliest": EARLIEST.isoformat(), "latest": _latest().isoformat()},
                code="out_of_range",
            )
        return day

    def clean_start(self) -> date | None:
        return self._clean_day("start")

    def clean_end(self) -> date | None:
        return self._clean_day("end")

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> ReportFilters:
        site = self.cleaned_data.get("site")
        site_ids = frozenset({site.pk}) if site else self.site_ids
        return ReportFilters(site_ids=site_ids, start=self.cleaned_data.get("start"), end=self.cleaned_data.get("end"))

    def download_language(self) -> str:
        return self.cleaned_data.get("language") or translation.get_language() or settings.LANGUAGE_CODE


def _sites_covered(filters: ReportFilters) -> list[Site]:
    sites = Site.objects.order_by("code")
    return list(sites if filters.site_ids is None else sites.filter(pk__in=filters.site_ids))


def _scope_name(filters: ReportFilters, sites: list[Site]) -> str:
    """What a file name says the report covers: the whole trial, a site's code, or a researcher's sites."""
    if filters.site_ids is None:
        return "trial"
    return "-".join(site.code for site in sites) or "none"


def _form_for(request: AuthenticatedHttpRequest) -> ReportForm:
    if not may_open_report(request.user):
        raise PermissionDenied
    form = ReportForm(request.GET, user=request.user)
    form.is_valid()
    return form


def _page(request: AuthenticatedHttpRequest, form: ReportForm, report: Report | None) -> HttpResponse:
    context = {"form": form, "report": None}
    if report is not None:
        context |= report_context(report)
    return render(request, "reports/report.html", context)


@require_GET
@login_required
def report_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = _form_for(request)
    return _page(request, form, build_report(form.filters()) if form.is_valid() else None)


# Each download: its renderer, its file's extension and its content type.
RENDERERS = {
    "pdf": (pdf.render_pdf, "pdf", pdf.CONTENT_TYPE),
    "xlsx": (xlsx.render_xlsx, "xlsx", xlsx.CONTENT_TYPE),
    "csv": (csvzip.render_csv_zip, "zip", csvzip.CONTENT_TYPE),
}


def _download(request: AuthenticatedHttpRequest, file_format: str) -> HttpResponse:
    form = _form_for(request)
    if not form.is_valid():
        return _page(request, form, None)
    filters = form.filters()
    language = form.download_language()
    render_file, extension, content_type = RENDERERS[file_format]
    with translation.override(language):
        report = build_report(filters)
        try:
            content = render_file(report)
        except Exception as error:
            query = request.GET.copy().urlencode()
            if file_format == "pdf":
                # WeasyPrint depends on system libraries and fonts; when it fails the report is still there in the
                # other formats. Logged with its traceback, and not recorded as downloaded.
                logger.exception("The feasibility report's PDF could not be made")
                return render(request, "reports/report_pdf_failed.html", {"query": query}, status=503)
            if not isinstance(error, OSError):
                raise
            # The Excel writer works in temporary files: a full disk fails this download only, never the page.
            logger.exception("The feasibility report's %s file could not be written", file_format)
            back = reverse("reports:report") + "?" + query
            return render(request, "reports/download_failed.html", {"back": back}, status=503)
    sites = _sites_covered(filters)
    record_event(
        kind=EventKind.REPORT_DOWNLOADED,
        user=request.user,
        site=sites[0] if len(sites) == 1 else None,
        format=file_format,
        sites=[site.code for site in sites],
        start=filters.start.isoformat() if filters.start else None,
        end=filters.end.isoformat() if filters.end else None,
        language=language,
    )
    name = f"feasibility-report-{_scope_name(filters, sites)}-{timezone.localdate().isoformat()}.{extension}"
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@login_required
def report_pdf(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _download(request, "pdf")


@require_GET
@login_required
def report_xlsx(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _download(request, "xlsx")


@require_GET
@login_required
def report_csv(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _download(request, "csv")


urlpatterns: list[URLPattern] = [
    path("", report_page, name="report"),
    path("feasibility.pdf", report_pdf, name="report_pdf"),
    path("feasibility.xlsx", report_xlsx, name="report_xlsx"),
    path("feasibility.zip", report_csv, name="report_csv"),
]


def register() -> None:
    """Menu items and other registrations of this part, called from ReportsConfig.ready()."""
    register_menu_item(MenuItem(_("Reports"), "reports:report", may_open_report, position=60))
