from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trial import health, services
from trial.forms import SiteRecruitmentForm, TrialSettingsForm, add_service_error
from trial.models import RecruitmentState, Site, TrialSettings
from trial.navigation import registered_home_for
from trial.roles import AuthenticatedHttpRequest, Role, has_role, require_role
from trial.selectors import site_recruitment_states, trial_settings_changes, trial_settings_groups


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # Each role's home page is where its work starts: the record status dashboard for researchers and assessors,
    # recruitment against the target for the PI, the lists' state for data managers, their families for partners.
    # An app above may register a role's home (trial.navigation.register_home): an assessor's worklist.
    registered = registered_home_for(request.user)
    if registered is not None:
        return redirect(registered)
    if has_role(request.user, Role.RESEARCHER, Role.OUTCOME_ASSESSOR):
        return redirect("families:list")
    if has_role(request.user, Role.PRINCIPAL_INVESTIGATOR):
        return redirect("randomization:recruitment")
    if has_role(request.user, Role.DATA_MANAGER):
        return redirect("randomization:lists")
    if has_role(request.user, Role.FAMILY_PARTNER):
        return redirect("visits:partner_home")
    return render(
        request, "trial/home.html", {"manages": has_role(request.user, Role.DATA_MANAGER, Role.ADMINISTRATOR)}
    )


@login_required
def trial_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Data managers change the trial settings, with a reason; the PI reads them. Both see every change."""
    require_role(request, Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR)
    may_change = has_role(request.user, Role.DATA_MANAGER)
    if request.method == "POST" and not may_change:
        raise PermissionDenied
    # A row of its own: the form writes the typed values into its instance, which must not be the request's
    # cached settings (TrialSettings.current) that the rest of the page reads.
    row = TrialSettings.objects.get(pk=TrialSettings.current().pk)
    form = TrialSettingsForm(request.POST or None, instance=row) if may_change else None
    if form is not None and request.method == "POST" and form.is_valid():
        try:
            services.trial_settings_change(
                changes=form.changes(), reason=form.cleaned_data["reason"], changed_by=request.user
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("The trial settings are saved."))
            return redirect("trial_settings")
    return render(
        request,
        "trial/settings.html",
        {
            "form": form,
            "groups": trial_settings_groups(TrialSettings.current()),
            "changes": trial_settings_changes(),
        },
    )


@login_required
def recruitment_states(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Each site's recruitment state, since when and why, with a form per site (data managers and the PI)."""
    require_role(request, *services.RECRUITMENT_STATE_ROLES)
    return render(
        request,
        "trial/recruitment_states.html",
        {"sites": [(row, SiteRecruitmentForm(prefix=row.site.code)) for row in site_recruitment_states()]},
    )


@login_required
def site_recruitment_state(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    """Open, pause or close one site's recruitment, with a reason."""
    require_role(request, *services.RECRUITMENT_STATE_ROLES)
    site = get_object_or_404(Site, code=site_code)
    form = SiteRecruitmentForm(request.POST or None, prefix=site.code)
    if request.method == "POST" and form.is_valid():
        try:
            services.site_set_recruitment_state(
                site=site,
                state=form.cleaned_data["state"],
                reason=form.cleaned_data["reason"],
                changed_by=request.user,
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("Recruitment at %(site)s is now %(state)s.")
                % {"site": site.name, "state": RecruitmentState(form.cleaned_data["state"]).label.lower()},
            )
            return redirect("recruitment_states")
    return render(request, "trial/site_recruitment_state.html", {"site": site, "form": form})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health.statuses()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)
