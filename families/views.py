from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from families import services
from families.family_list import family_list_parts, family_table, sort_headings
from families.forms import (
    ChildFormSet,
    ConsentForm,
    FamilyFilterForm,
    HouseholdCorrectionForm,
    IdentifiersForm,
    ParentFormSet,
    RegistrationForm,
    ScreeningForm,
    WithdrawalForm,
)
from families.models import Consent, ConsentDecision, FamilyStatus
from families.pages import family_form_page
from families.sections import family_sections
from families.selectors import (
    ACT_ROLES,
    FAMILY_SORTS,
    IDENTIFIER_ROLES,
    VIEW_ROLES,
    blinded_from,
    families_for_list,
    families_visible_to,
    family_timeline,
    get_family_for_user,
    hidden,
    status_counts,
    written_after,
)
from trial.forms import add_service_error
from trial.roles import (
    AuthenticatedHttpRequest,
    Role,
    can_at_site,
    has_role,
    is_blinded,
    require_role,
    sites_for,
    users_with_role,
)
from trial.selectors import sites_not_recruiting

FAMILIES_PER_PAGE = 25


@login_required
def family_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The families the user may see, as the record status dashboard: counts by status (each a filter), sorting,
    the next step for a researcher, and what the apps above add for this user (families.family_list)."""
    require_role(request, *VIEW_ROLES)
    parts = family_list_parts()
    form = FamilyFilterForm(
        request.GET or None,
        sites=sites_for(request.user, *VIEW_ROLES),
        extra_filters=[extra for part in parts for extra in part.filters(request)],
    )
    chosen = form.cleaned_data if form.is_valid() else {}
    families = families_visible_to(request.user)
    if chosen.get("q"):
        families = families.filter(study_id__icontains=chosen["q"].strip())
    if chosen.get("site"):
        families = families.filter(site=chosen["site"])
    for extra in form.extra_filters:
        if chosen.get(extra.name):
            families = extra.apply(families, chosen[extra.name])
    counts = status_counts(families)
    if chosen.get("status"):
        families = families.filter(status=chosen["status"])
    sort = chosen.get("sort") or "study_id"
    blinded = is_blinded(request.user)
    page = Paginator(families_for_list(families, sort=sort, blinded=blinded), FAMILIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "families/family_list.html",
        {
            "form": form,
            "page": page,
            "table": family_table(request, list(page)),
            "blinded": blinded,
            "counts": [(status, label, counts[status]) for status, label in FamilyStatus.choices],
            "total": sum(counts.values()),
            "sorting": sort_headings(sort, FAMILY_SORTS),
            "query": _query_without(request, "page"),
            "filter_query": _query_without(request, "page", "status"),
            "sort_query": _query_without(request, "page", "sort"),
            "can_register": has_role(request.user, *ACT_ROLES),
            "not_recruiting": sites_not_recruiting(sites_for(request.user, *ACT_ROLES)),
        },
    )


def _query_without(request: HttpRequest, *names: str) -> str:
    """The page's GET parameters without `names`, for links that change those."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


IDENTIFIER_FIELDS = tuple(IdentifiersForm.base_fields)


@sensitive_post_parameters(*IDENTIFIER_FIELDS)
@login_required
def family_register(request: AuthenticatedHttpRequest) -> HttpResponse:
    require_role(request, *ACT_ROLES)
    sites = sites_for(request.user, *ACT_ROLES)
    if not sites.exists():
        raise PermissionDenied
    form = RegistrationForm(request.POST or None, sites=sites)
    parents = ParentFormSet(request.POST or None, prefix="parents")
    children = ChildFormSet(request.POST or None, prefix="children")
    if request.method == "POST" and all([form.is_valid(), parents.is_valid(), children.is_valid()]):
        data = form.cleaned_data
        try:
            family = services.family_register(
                site=data["site"],
                referral_date=data["referral_date"],
                referral_source=data["referral_source"],
                parent_birth_years=parents.values(),
                child_birth_dates=children.values(),
                identifiers=form.identifiers(),
                registered_by=request.user,
                token=data["token"],
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Family %(study_id)s registered.") % {"study_id": family.study_id})
            return redirect("families:detail", study_id=family.study_id)
    return render(
        request,
        "families/family_register.html",
        {"form": form, "parents": parents, "children": children, "not_recruiting": sites_not_recruiting(sites)},
    )


@login_required
def family_detail(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id)
    can_act = can_at_site(request.user, family.site_id, *ACT_ROLES)
    sections = family_sections()
    withdrawal = getattr(family, "withdrawal", None)
    blind_from = blinded_from(request.user, family) if withdrawal is not None else None
    withdrawal_details = ""
    if withdrawal is not None:
        withdrawal_details = withdrawal.details
        if withdrawal_details and written_after(blind_from, withdrawal.recorded_at):
            withdrawal_details = hidden()
    context = {
        "family": family,
        "parents": list(family.parents.all()),
        "children": list(family.children.all()),
        "screenings": list(family.screenings.select_related("screened_by").order_by("-recorded_at", "-pk")),
        # Newest first. (Decisions come before any randomisation, so what they say stays readable to all.)
        "decisions": list(
            Consent.objects.select_related("obtained_by").filter(family=family).order_by("-recorded_at", "-pk")
        ),
        "withdrawal": withdrawal,
        "withdrawal_details": withdrawal_details,
        "identity": getattr(family, "identity", None)
        if can_at_site(request.user, family.site_id, *IDENTIFIER_ROLES)
        else None,
        "timeline": family_timeline(
            family,
            [source for section in sections for source in section.timeline_sources(request, family)],
            viewer=request.user,
        ),
        "sections": [
            (section.template_name, section_context)
            for section in sections
            if (section_context := section.context(request, family)) is not None
        ],
        "can_screen": can_act
        and family.status in (FamilyStatus.REFERRED, FamilyStatus.ELIGIBLE, FamilyStatus.INELIGIBLE),
        "can_decide": can_act and family.status in (FamilyStatus.ELIGIBLE, FamilyStatus.DECLINED),
        "can_withdraw": can_act and family.status in services.WITHDRAWABLE,
        "can_correct_household": can_act and family.status in services.HOUSEHOLD_CORRECTABLE,
    }
    return render(request, "families/family_detail.html", context)


@login_required
def family_screen(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    form = ScreeningForm(request.POST or None, family=family)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            screening = services.family_screen(
                family=family,
                screened_on=data["screened_on"],
                involved_with_child_welfare=data["involved_with_child_welfare"],
                harmful_circumstances=data["harmful_circumstances"],
                struggle_areas=data["struggle_areas"],
                rescreening_reason=data.get("rescreening_reason", ""),
                screened_by=request.user,
                token=data["token"],
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            if screening.eligible:
                messages.success(request, _("%(study_id)s is eligible.") % {"study_id": family.study_id})
            else:
                messages.warning(request, _("%(study_id)s is not eligible.") % {"study_id": family.study_id})
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request, "families/family_screen.html", family, form, heading=_("Screening"), submit_label=_("Save screening")
    )


@login_required
def family_consent(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    researchers = users_with_role(Role.RESEARCHER, site=family.site)
    form = ConsentForm(
        request.POST or None, family=family, researchers=researchers, initial={"obtained_by": request.user.pk}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        new_decision = {"replaces": data["replaces"], "new_decision_reason": data.get("new_decision_reason", "")}
        try:
            if data["decision"] == ConsentDecision.CONSENTED:
                services.family_record_consent(
                    family=family,
                    decided_on=data["decided_on"],
                    form_version=data["form_version"],
                    obtained_by=data["obtained_by"],
                    recorded_by=request.user,
                    token=data["token"],
                    **new_decision,
                )
                messages.success(request, _("Consent of %(study_id)s recorded.") % {"study_id": family.study_id})
            else:
                services.family_record_decline(
                    family=family,
                    decided_on=data["decided_on"],
                    reason=data["decline_reason"],
                    details=data["decline_details"],
                    recorded_by=request.user,
                    token=data["token"],
                    **new_decision,
                )
                messages.info(request, _("%(study_id)s declined.") % {"study_id": family.study_id})
        except ValidationError as error:
            add_service_error(form, error)
        else:
            return redirect("families:detail", study_id=family.study_id)
    latest = family.consent
    intro = ""
    if latest is not None:
        intro = _(
            "%(study_id)s answered “%(decision)s” on %(date)s. Record the family's new answer and why: every "
            "decision is kept, and the latest decides."
        ) % {
            "study_id": family.study_id,
            "decision": latest.get_decision_display().lower(),
            "date": date_format(latest.decided_on, "SHORT_DATE_FORMAT"),
        }
    return family_form_page(
        request,
        "families/family_consent.html",
        family,
        form,
        heading=_("Consent"),
        submit_label=_("Save the decision"),
        intro=intro,
    )


@login_required
def family_withdraw(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    form = WithdrawalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.family_withdraw(
                family=family,
                withdrawn_on=data["withdrawn_on"],
                reason=data["reason"],
                details=data["details"],
                data_may_be_kept=data["data_may_be_kept"],
                recorded_by=request.user,
                token=data["token"],
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.info(request, _("Withdrawal of %(study_id)s recorded.") % {"study_id": family.study_id})
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request,
        "families/family_withdraw.html",
        family,
        form,
        heading=_("Withdrawal"),
        submit_label=_("Record withdrawal"),
    )


@sensitive_post_parameters(*IDENTIFIER_FIELDS)
@login_required
def family_identifiers(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    if not can_at_site(request.user, family.site_id, *IDENTIFIER_ROLES):
        raise PermissionDenied
    identity = family.identity
    form = IdentifiersForm(request.POST or None, initial={name: getattr(identity, name) for name in IDENTIFIER_FIELDS})
    if request.method == "POST" and form.is_valid():
        try:
            services.family_update_identifiers(family=family, identifiers=form.identifiers(), changed_by=request.user)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Identifiers of %(study_id)s saved.") % {"study_id": family.study_id})
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request,
        "families/family_identifiers.html",
        family,
        form,
        heading=_("Direct identifiers"),
        submit_label=_("Save"),
    )


@login_required
def family_household(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    data = request.POST or None
    form = HouseholdCorrectionForm(data)
    parents = ParentFormSet(
        data, prefix="parents", initial=[{"birth_year": p.birth_year} for p in family.parents.all()]
    )
    children = ChildFormSet(
        data, prefix="children", initial=[{"birth_date": c.birth_date} for c in family.children.all()]
    )
    if request.method == "POST" and all([form.is_valid(), parents.is_valid(), children.is_valid()]):
        try:
            changed = services.family_correct_household(
                family=family,
                parent_birth_years=parents.values(),
                child_birth_dates=children.values(),
                reason=form.cleaned_data["reason"],
                corrected_by=request.user,
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            if changed:
                messages.success(request, _("Household of %(study_id)s corrected.") % {"study_id": family.study_id})
            else:
                messages.info(request, _("Nothing in the household changed."))
            return redirect("families:detail", study_id=family.study_id)
    return render(
        request,
        "families/family_household.html",
        {"family": family, "form": form, "parents": parents, "children": children},
    )
