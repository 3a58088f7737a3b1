from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from families.models import Family
from followups import services
from followups.forms import BookingForm, GridFilterForm, LostForm, RecordForm
from followups.models import Assessment, LostToFollowUp
from followups.selectors import (
    READ_ROLES,
    RECORD_ROLES,
    Grid,
    can_record,
    family_schedule,
    get_family_for_follow_ups,
    may_see_contact_details,
    state_of,
    status_grid,
    time_point_label,
    worklist,
)
from followups.states import STYLES, State
from trial.events import record_event
from trial.forms import add_service_error
from trial.models import EventKind
from trial.roles import AuthenticatedHttpRequest, require_role, sites_for


def _family(request: AuthenticatedHttpRequest, study_id: str) -> Family:
    """The family if the user may read its follow-ups: 404 otherwise (also to a data manager or a partner)."""
    return get_family_for_follow_ups(request.user, study_id)


def _assessment(request: AuthenticatedHttpRequest, study_id: str, months: int) -> Assessment:
    family = _family(request, study_id)
    assessment = get_object_or_404(Assessment.objects.select_related("family__site"), family=family, months=months)
    assessment.family = family
    return assessment


def _back(request: AuthenticatedHttpRequest, default: str) -> str:
    """Where to go after a write: the page the user came from (the grid with its filters, the worklist)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path of this site only (a hostile "next" leads nowhere else, and never into a header unchecked).
    if (
        target.startswith("/")
        and target.isprintable()
        and len(target) <= 2000
        and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    ):
        return target
    return default


@login_required
def grid(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Families by time points, coloured by state with the state's name (never colour alone), for the assessors and
    researchers of the families' sites and the PI. No arm, no randomisation order: families by study ID."""
    require_role(request, *READ_ROLES)
    form = GridFilterForm(request.GET or None, sites=sites_for(request.user, *READ_ROLES).order_by("code"))
    chosen = form.cleaned_data if form.is_valid() else {}
    site = chosen.get("site")
    result = status_grid(
        request.user,
        site_id=site.pk if site else None,
        state=chosen.get("state") or "",
        page_number=request.GET.get("page"),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "followups/grid.html",
        {
            "form": form,
            "grid": result,
            "page": result.page,
            "query": query.urlencode(),
            "time_points": [time_point_label(months) for months in result.time_points],
            "rows": _grid_rows(result, next_url=request.get_full_path()),
        },
    )


# A grid cell, made with str.format from values escaped beforehand (format_html escapes every value of every cell).
_CELL = (
    '<td id="assessment-{pk}" data-assessment-id="{pk}" data-months="{months}" data-state="{state}">'
    '<a class="text-decoration-none" href="{url}"><span class="badge {css}"><span aria-hidden="true">{icon}</span> '
    "{label}</span></a>{booking}</td>"
)


def _grid_rows(grid: Grid, *, next_url: str) -> list[tuple[SafeString, str, list[SafeString]]]:
    """Each row's family and cells as HTML, made here: a hundred families make five hundred cells, too many for a
    template's include and URL lookup each (bench/followups_grid.py measures the page). Every value is escaped."""
    badges = {
        state.value: {
            "state": state.value,
            "css": escape(STYLES[state].css),
            "icon": escape(STYLES[state].icon),
            "label": escape(str(state.label)),
        }
        for state in State
    }
    booked = escape(_("booked"))
    empty = mark_safe('<td class="text-body-secondary">\u2014</td>')
    # One URL reversed, the others made alike (the routes are families/<study_id>/ and followups/<study_id>/<months>/).
    family_pattern = reverse("families:detail", args=["STUDY-ID"]).replace("STUDY-ID", "{study_id}")
    cell_pattern = reverse("followups:assessment", args=["STUDY-ID", 0]).replace("STUDY-ID/0/", "{study_id}/{months}/")
    suffix = escape(f"?{urlencode({'next': next_url})}")
    rows = []
    for row in grid.rows:
        study_id = escape(row.family.study_id)
        family = format_html('<a class="study-id" href="{}">{}</a>', family_pattern.format(study_id=study_id), study_id)
        cells = []
        for cell in row.cells:
            assessment = cell.assessment
            if assessment is None or cell.state is None:
                cells.append(empty)
                continue
            booking = ""
            if assessment.booked_on is not None and assessment.status == "scheduled":
                booking = '<div class="small text-body-secondary" data-booked>{} {}</div>'.format(
                    booked, escape(date_format(assessment.booked_on, "SHORT_DATE_FORMAT"))
                )
            cells.append(
                mark_safe(  # noqa: S308 (every value escaped above)
                    _CELL.format(
                        pk=assessment.pk,
                        months=assessment.months,
                        url=cell_pattern.format(study_id=study_id, months=assessment.months) + suffix,
                        booking=booking,
                        **badges[cell.state.value],
                    )
                )
            )
        rows.append((family, row.family.site.code, cells))
    return rows


@login_required
def worklist_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An assessor's home: due this week, overdue, booked."""
    require_role(request, *RECORD_ROLES)
    return render(
        request,
        "followups/worklist.html",
        {"worklist": worklist(request.user), "styles": STYLES, "here": request.get_full_path()},
    )


@login_required
def assessment_detail(request: AuthenticatedHttpRequest, study_id: str, months: int) -> HttpResponse:
    """One assessment: its window and state; for an assessor of the site, booking and recording (or correcting)."""
    assessment = _assessment(request, study_id, months)
    family = assessment.family
    may_record = can_record(request.user, family)
    if request.method == "POST" and not may_record:
        raise PermissionDenied
    correcting = assessment.is_recorded
    form = None
    if may_record and assessment.status != "stopped":
        form = RecordForm.for_assessment(assessment, request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.assessment_record(
                    assessment=assessment,
                    outcome=form.outcome(assessment),
                    recorded_by=request.user,
                    token=data["token"],
                    correction_reason=data.get("correction_reason", ""),
                )
            except ValidationError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request,
                    _("%(study_id)s: the %(time_point)s assessment is recorded.")
                    % {"study_id": family.study_id, "time_point": time_point_label(assessment.months)},
                )
                return redirect(_back(request, reverse("followups:grid")))
    show_confirmation = form is not None and bool(
        form.errors.get("confirm_outside_window") or form.data.get("confirm_outside_window")
    )
    return render(
        request,
        "followups/assessment.html",
        {
            "family": family,
            "assessment": assessment,
            "state": state_of(assessment),
            "styles": STYLES,
            "form": form,
            "booking_form": BookingForm(initial={"booked_on": assessment.booked_on}),
            "may_record": may_record,
            "may_book": may_record and assessment.status == "scheduled",
            "may_see_contact": may_see_contact_details(request.user, family),
            "correcting": correcting,
            "show_confirmation": show_confirmation,
            "next": _back(request, ""),
            "time_point": time_point_label(assessment.months),
        },
    )


@require_POST
@login_required
def assessment_book(request: AuthenticatedHttpRequest, study_id: str, months: int) -> HttpResponse:
    assessment = _assessment(request, study_id, months)
    if not can_record(request.user, assessment.family):
        raise PermissionDenied
    form = BookingForm(request.POST)
    detail = reverse("followups:assessment", args=[study_id, months])
    if form.is_valid():
        booked_on = None if form.cleaned_data["clear"] else form.cleaned_data["booked_on"]
        try:
            services.assessment_book(assessment=assessment, booked_on=booked_on, booked_by=request.user)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            if booked_on is None:
                messages.success(request, _("The booking is cleared."))
            else:
                messages.success(request, _("The assessment is booked."))
    else:
        for field_errors in form.errors.values():
            for field_error in field_errors:
                messages.error(request, str(field_error))
    next_url = _back(request, "")
    return redirect(f"{detail}?{urlencode({'next': next_url})}" if next_url else detail)


@login_required
def contact_details(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    """The parent's name and phone, for an assessor booking an open or upcoming assessment; each view is an audit
    event. Nothing else identifying (no address, no identity number, no other members)."""
    family = _family(request, study_id)
    if not can_record(request.user, family):
        raise PermissionDenied
    if not may_see_contact_details(request.user, family):
        messages.info(
            request,
            _("%(study_id)s has no open or upcoming assessment: its contact details are not shown.")
            % {"study_id": family.study_id},
        )
        return redirect("families:detail", study_id=family.study_id)
    record_event(kind=EventKind.CONTACT_DETAILS_VIEWED, user=request.user, site=family.site, subject=family.study_id)
    identity = family.identity
    return render(
        request,
        "followups/contact.html",
        {
            "family": family,
            "name": identity.contact_name,
            "phone": identity.phone,
            "schedule": [(a, s) for a, s in family_schedule(family) if a.status == "scheduled"],
            "styles": STYLES,
            "next": _back(request, ""),
        },
    )


@login_required
def family_lost(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = _family(request, study_id)
    if not can_record(request.user, family):
        raise PermissionDenied
    if LostToFollowUp.objects.filter(family=family).exists():
        messages.info(request, _("%(study_id)s is already lost to follow-up.") % {"study_id": family.study_id})
        return redirect("families:detail", study_id=family.study_id)
    form = LostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.family_lose_to_follow_up(
                family=family,
                lost_on=form.cleaned_data["lost_on"],
                reason=form.cleaned_data["reason"],
                details=form.cleaned_data["details"],
                recorded_by=request.user,
                token=form.cleaned_data["token"],
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("%(study_id)s is lost to follow-up; its remaining assessments are stopped.")
                % {"study_id": family.study_id},
            )
            return redirect("families:detail", study_id=family.study_id)
    return render(
        request,
        "followups/lost.html",
        {
            "family": family,
            "form": form,
            "heading": _("Lost to follow-up"),
            "submit_label": _("Record lost to follow-up"),
            "intro": _(
                "The family's remaining assessments stop from this date. The family stays randomised and is "
                "analysed in its arm; what was collected is kept."
            ),
        },
    )
