from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Min
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from families.models import Family, FamilyIdentity
from families.pages import family_form_page
from families.selectors import get_family_for_user
from randomization.selectors import is_intervention_family
from trial.forms import add_service_error
from trial.models import TrialSettings
from trial.roles import AuthenticatedHttpRequest, Role, require_role, sites_for
from visits import selectors, services, weeks
from visits.forms import (
    AssignForm,
    ContactCorrectionForm,
    ContactForm,
    ContactVoidForm,
    EndInterventionForm,
    PartnerStatusForm,
    duration_label,
)
from visits.models import Contact, InterventionPeriod, PartnerProfile
from visits.selectors import (
    WORK_ROLES,
    can_manage_caseload,
    can_see_caseload,
    partner_profile_of,
    work_site_ids,
)

CONTACTS_PER_PAGE = 20
DOSE_FAMILIES_PER_PAGE = 50
DOSE_WEEKS = 12


# --- The Family Partner ------------------------------------------------------------------------------------


@login_required
def partner_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    require_role(request, Role.FAMILY_PARTNER)
    profile = partner_profile_of(request.user)
    today = weeks.today()
    rows = selectors.partner_families(profile, today) if profile else []
    former = selectors.former_families(profile, today) if profile else []
    return render(
        request,
        "visits/partner_home.html",
        {
            "profile": profile,
            "rows": rows,
            "former": former,
            "this_week": weeks.week_of(today),
            "target_hours": TrialSettings.current().weekly_hours_target,
            "no_contact_days": TrialSettings.current().no_contact_days,
        },
    )


def _work_family(request: AuthenticatedHttpRequest, study_id: str) -> tuple[Family, selectors.WorkAccess]:
    """A family whose Family Partner work this user may see (its partner now, the site's researchers, the PI),
    and what the user may do with it. 404 to everyone else, and for a family that has no Family Partner work
    (a control family, say)."""
    family = Family.objects.select_related("site").filter(study_id=study_id).first()
    if family is None:
        raise Http404
    access = selectors.work_access(request.user, family)
    if not access.sees or not is_intervention_family(family):
        raise Http404
    return family, access


@login_required
def family_work(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family, access = _work_family(request, study_id)
    contacts_shown = selectors.family_contacts(family)
    if access.former_until is not None:  # a former partner: their own contacts only
        contacts_shown = contacts_shown.filter(author=request.user)
    page = Paginator(contacts_shown, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    rights = selectors.contact_rights(request.user, family, access)
    contacts = [
        (
            contact,
            rights.reads_notes(contact),
            not contact.is_voided and rights.corrects(contact),
            not contact.is_voided and rights.voids(contact),
        )
        for contact in page
    ]
    period = InterventionPeriod.objects.filter(family=family).first()
    return render(
        request,
        "visits/family_work.html",
        {
            "family": family,
            "is_partner": access.is_partner,
            "former_until": access.former_until,
            # docs/trial-rules.md: the family's Family Partner sees who and where the family is.
            "identity": FamilyIdentity.objects.filter(family=family).first() if access.is_partner else None,
            "period": period,
            "assignment": selectors.current_assignment(family),
            "weeks": selectors.family_weeks(family, weeks.today(), count=4, period=period),
            "page": page,
            "contacts": contacts,
        },
    )


@sensitive_post_parameters("notes")
@login_required
def contact_new(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family, access = _work_family(request, study_id)
    if not access.is_partner:
        raise PermissionDenied
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.contact_log(
                family=family, author=request.user, data=form.contact_input(), token=form.cleaned_data["token"]
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            day = services.day_text(contact.contact_date)
            logged = _("Logged: %(duration)s with %(study_id)s on %(date)s.") % {
                "duration": duration_label(contact.duration_quarters),
                "study_id": family.study_id,
                "date": day,
            }
            # A mistake is seen at once: the message links to the contact's correction.
            messages.success(
                request,
                format_html(
                    '{} <a class="alert-link" href="{}">{}<span class="visually-hidden"> {} {}</span></a>',
                    logged,
                    reverse("visits:contact_edit", args=[contact.pk]),
                    _("Correct"),
                    _("the contact of"),
                    day,
                ),
            )
            return redirect("visits:partner_home")
    return render(request, "visits/contact_form.html", {"family": family, "form": form, "heading": _("Log a contact")})


@sensitive_post_parameters("notes")
@login_required
def contact_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.select_related("family__site"), pk=pk)
    family = contact.family
    access = selectors.work_access(request.user, family)
    if not selectors.contact_rights(request.user, family, access).corrects(contact):
        raise PermissionDenied if access.sees else Http404
    if contact.is_voided:
        messages.error(request, services.VOIDED_IS_FINAL)
        return redirect("visits:family", study_id=family.study_id)
    needs_reason = services.correction_needs_reason(contact)
    initial = {name: getattr(contact, name) for name in services.CONTACT_FIELDS}
    form = ContactCorrectionForm(request.POST or None, initial=initial, needs_reason=needs_reason)
    if request.method == "POST" and form.is_valid():
        try:
            _contact, changed = services.contact_correct(
                contact=contact, author=request.user, data=form.contact_input(), reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            if changed:
                messages.success(request, _("The contact is corrected."))
            else:
                messages.info(request, _("Nothing in the contact changed."))
            return redirect("visits:family", study_id=family.study_id)
    return render(
        request,
        "visits/contact_form.html",
        {"family": family, "form": form, "heading": _("Correct a contact"), "contact": contact},
    )


@login_required
def contact_void(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.select_related("family__site", "author"), pk=pk)
    family = contact.family
    rights = selectors.contact_rights(request.user, family)
    if not rights.voids(contact):
        raise PermissionDenied if selectors.work_access(request.user, family).sees else Http404
    if contact.is_voided:
        messages.info(request, _("This contact is voided already."))
        return redirect("visits:family", study_id=family.study_id)
    form = ContactVoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_void(contact=contact, voided_by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("The contact of %(date)s is voided: its time no longer counts.")
                % {"date": services.day_text(contact.contact_date)},
            )
            return redirect("visits:family", study_id=family.study_id)
    return render(
        request,
        "visits/contact_void.html",
        {
            "family": family,
            "contact": contact,
            "form": form,
            "notes_visible": rights.reads_notes(contact),
        },
    )


# --- Researchers and the PI: caseloads, the waiting list, hours per week --------------------------------------


def _require_caseload_viewer(request: AuthenticatedHttpRequest) -> None:
    if not can_see_caseload(request.user):
        raise PermissionDenied


@login_required
def caseload(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_caseload_viewer(request)
    today = weeks.today()
    site_loads = selectors.caseloads(work_site_ids(request.user), today)
    return render(
        request,
        "visits/caseload.html",
        {
            "site_loads": [(load, can_manage_caseload(request.user, load.site.pk)) for load in site_loads],
            "today": today,
            "status_form": PartnerStatusForm(),
            # A family's page is the family list's address and its study ID: one reverse() for a thousand links.
            "families_url": reverse("families:list"),
        },
    )


@require_POST
@login_required
def partner_status(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(PartnerProfile, pk=pk)
    if not can_manage_caseload(request.user, partner.site_id):
        raise PermissionDenied
    form = PartnerStatusForm(request.POST)
    if form.is_valid():
        partner = services.partner_set_status(
            partner=partner, status=form.cleaned_data["status"], changed_by=request.user
        )
        messages.success(
            request,
            _("%(partner)s is now: %(status)s.") % {"partner": partner, "status": partner.get_status_display().lower()},
        )
    else:
        messages.error(request, _("Choose active or on leave."))
    return redirect("visits:caseload")


@login_required
def dose(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_caseload_viewer(request)
    sites = list(sites_for(request.user, *WORK_ROLES))
    this_week = weeks.week_of(weeks.today())
    site = next((option for option in sites if option.code == request.GET.get("site")), None)
    families = selectors.families_in_intervention(frozenset({site.pk}) if site else work_site_ids(request.user))
    # From the first intervention's week (no endless "earlier weeks") to this week.
    first_start = InterventionPeriod.objects.filter(family__in=families.values("pk")).aggregate(
        first=Min("started_on")
    )["first"]
    first_week = weeks.week_of(first_start) if first_start else this_week
    last = weeks.parse_week(request.GET.get("until", "")) or this_week
    last = min(max(last, first_week.shifted(DOSE_WEEKS - 1)), this_week)
    shown = weeks.weeks_until(last, DOSE_WEEKS)
    page = Paginator(families.select_related("site", "intervention"), DOSE_FAMILIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "visits/dose.html",
        {
            "sites": sites,
            "site": site,
            "weeks": shown,
            "last_week": last,
            "this_week": this_week,
            "rows": selectors.dose_rows(list(page), shown),
            "totals": selectors.week_totals(families, shown),
            "page": page,
            "query": query.urlencode(),
            "earlier": shown[0].shifted(-1).code if shown[0].start > first_week.start else "",
            "later": last.shifted(DOSE_WEEKS).code if last.start < this_week.start else "",
            "target_hours": TrialSettings.current().weekly_hours_target,
        },
    )


# --- A family's Family Partner (researchers) --------------------------------------------------------------


def _managed_family(request: AuthenticatedHttpRequest, study_id: str) -> Family:
    family = get_family_for_user(request.user, study_id, act=True)
    if not can_manage_caseload(request.user, family.site_id):
        raise PermissionDenied
    return family


@login_required
def family_assign(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = _managed_family(request, study_id)
    try:
        services.check_assignable(family)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("families:detail", study_id=family.study_id)
    current = selectors.current_assignment(family)
    in_error = selectors.randomised_in_error(family)
    form = AssignForm(
        request.POST or None,
        partners=selectors.assignable_partners(family),
        current=current,
        in_error=in_error is not None,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = services.family_assign(
                family=family,
                partner=data["partner"],
                started_on=data["started_on"],
                assigned_by=request.user,
                reason=data.get("reason", ""),
                shown=data["shown"],
                confirmed_in_error=data.get("confirm_in_error", False),
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            values = {"study_id": family.study_id, "partner": result.assignment.partner}
            if result.created:
                messages.success(request, _("%(study_id)s is assigned to %(partner)s.") % values)
            else:
                messages.info(request, _("%(study_id)s already has %(partner)s as Family Partner.") % values)
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request,
        "visits/assign.html",
        family,
        form,
        heading=_("Change Family Partner") if current else _("Assign a Family Partner"),
        submit_label=_("Assign"),
        intro=_("Now: %(partner)s, since %(date)s.")
        % {"partner": current.partner, "date": services.day_text(current.started_on)}
        if current
        else _("The intervention starts with the first Family Partner and is planned to last %(months)s months.")
        % {"months": TrialSettings.current().intervention_expected_months},
        in_error=in_error,
    )


@login_required
def intervention_end(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = _managed_family(request, study_id)
    period = InterventionPeriod.objects.filter(family=family).first()
    if period is None or period.ended_on is not None:
        messages.error(request, _("%(study_id)s has no intervention running.") % {"study_id": family.study_id})
        return redirect("families:detail", study_id=family.study_id)
    form = EndInterventionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.intervention_end(
                family=family,
                ended_on=data["ended_on"],
                reason=data["reason"],
                details=data["details"],
                ended_by=request.user,
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.info(request, _("The intervention of %(study_id)s has ended.") % {"study_id": family.study_id})
            return redirect("families:detail", study_id=family.study_id)
    trial_settings = TrialSettings.current()
    earliest, latest = services.intervention_bounds(period, trial_settings)
    return family_form_page(
        request,
        "families/family_form_page.html",
        family,
        form,
        heading=_("End the intervention"),
        submit_label=_("End the intervention"),
        intro=_(
            "Started %(start)s. An end between %(earliest)s and %(latest)s (%(min)s to %(max)s months) can be "
            "“completed as planned”; an earlier or later end needs its reason. The Family Partner's slot becomes free."
        )
        % {
            "start": services.day_text(period.started_on),
            "earliest": services.day_text(earliest),
            "latest": services.day_text(latest),
            "min": trial_settings.intervention_min_months,
            "max": trial_settings.intervention_max_months,
        },
    )
