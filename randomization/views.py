from functools import partial

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from families.models import FamilyStatus
from families.pages import family_form_page
from families.selectors import get_family_for_user
from randomization import lists, services
from randomization.forms import (
    AnnotationForm,
    ExtendForm,
    GenerateForm,
    RandomiseForm,
    ReviewForm,
    UnblindForm,
    UnsealRequestForm,
)
from randomization.models import AllocationList, Arm
from randomization.preconditions import randomisation_refusals
from randomization.selectors import (
    LIST_ROLES,
    allocation_of,
    can_agree_to_review,
    can_agree_to_unsealing,
    can_randomise,
    can_see_recruitment,
    can_write_review,
    eligibility_summary,
    latest_findings,
    list_state,
    list_states,
    lists_with_generations,
    open_suspension,
    receipt_allocation,
    recent_unblindings,
    recruitment,
    unsealed_list_events,
)
from trial.forms import add_service_error
from trial.models import Site, TrialSettings
from trial.roles import AuthenticatedHttpRequest, Role, display_name, has_role, require_role, users_with_role


def _arm_message(arm: str) -> str:
    return str(Arm(arm).label)


def _step(request: HttpRequest, form: forms.Form) -> str:
    """Where a form with a confirmation page stands: "form" (show it, or again with what was typed: the
    confirmation page's Back), "confirm" (valid: show what will happen) or "act" (confirmed: call the service).
    Nothing is written before "act"."""
    if request.method != "POST" or "back" in request.POST or not form.is_valid():
        return "form"
    return "act" if request.POST.get("confirmed") == "yes" else "confirm"


def _confirmation_page(request: HttpRequest, form: forms.Form, **context) -> HttpResponse:
    """The page between a valid form and the service: what will happen, with Confirm and Back. The form's
    values travel in hidden fields, so that Back shows them again and Confirm sends them once more."""
    return render(request, "randomization/confirm_page.html", {"form": form, "visible_fields": (), **context})


# --- A family's randomisation ------------------------------------------------------------------------------


@login_required
def family_randomise(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    if not can_randomise(request.user, family):
        raise PermissionDenied
    if family.status != FamilyStatus.CONSENTED:
        # Already randomised (a reload, a second submit, a colleague): its receipt. Not yet consented: the
        # family page says why.
        if allocation_of(family) is not None:
            return redirect("randomization:receipt", study_id=family.study_id)
        messages.error(
            request,
            _("%(study_id)s cannot be randomised: the family is %(status)s.")
            % {"study_id": family.study_id, "status": family.get_status_display().lower()},
        )
        return redirect("families:detail", study_id=family.study_id)
    form = RandomiseForm(request.POST or None, study_id=family.study_id, site=family.site)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.family_randomise(
                family=family, confirmed_site=form.cleaned_data["site"], randomised_by=request.user
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            values = {"study_id": family.study_id, "arm": _arm_message(result.allocation.arm)}
            if result.created:
                messages.success(request, _("%(study_id)s is randomised to: %(arm)s.") % values)
            else:
                messages.info(request, _("%(study_id)s was already randomised, to: %(arm)s.") % values)
            return redirect("randomization:receipt", study_id=family.study_id)
    return render(
        request,
        "randomization/family_randomise.html",
        {
            "family": family,
            "form": form,
            "summary": eligibility_summary(family),
            # What the apps above say stands in the way (a baseline not recorded), before the confirm button; the
            # service asks again under the family's lock.
            "refusals": randomisation_refusals(family),
        },
    )


@login_required
def randomisation_receipt(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id)
    allocation = receipt_allocation(request.user, family)
    if allocation is None:
        raise Http404
    return render(request, "randomization/receipt.html", {"family": family, "allocation": allocation})


@login_required
def allocation_annotate(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id, act=True)
    if not can_randomise(request.user, family):
        raise PermissionDenied
    allocation = allocation_of(family)
    if allocation is None:
        messages.error(request, _("%(study_id)s has not been randomised.") % {"study_id": family.study_id})
        return redirect("families:detail", study_id=family.study_id)
    form = AnnotationForm(request.POST or None)
    step = _step(request, form)
    if step == "confirm":
        arm = _arm_message(allocation.arm)
        return _confirmation_page(
            request,
            form,
            family=family,
            heading=_("Randomised in error"),
            details=[
                (_("Family"), family.study_id),
                (_("Arm"), arm),
                (_("Why the randomisation was a mistake"), form.cleaned_data["reason"]),
            ],
            consequences=[
                _(
                    "The randomisation of %(study_id)s is marked as made in error, with your name and reason, for "
                    "good: it can be marked only once."
                )
                % {"study_id": family.study_id},
                _(
                    "Nothing is undone: the family stays in its arm (%(arm)s) and is analysed there (intention to "
                    "treat)."
                )
                % {"arm": arm},
            ],
            confirm_label=_("Confirm: mark as randomised in error"),
        )
    if step == "act":
        try:
            services.allocation_annotate(
                allocation=allocation, reason=form.cleaned_data["reason"], annotated_by=request.user
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.info(
                request,
                _("The randomisation of %(study_id)s is marked as made in error.") % {"study_id": family.study_id},
            )
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request,
        "families/family_form_page.html",
        family,
        form,
        heading=_("Randomised in error"),
        submit_label=_("Mark as randomised in error"),
        intro=_(
            "A randomisation is never undone. The family keeps its allocation and is analysed in its arm; "
            "this note records why the randomisation was a mistake. You confirm on the next page."
        ),
    )


@login_required
def family_unblind(request: AuthenticatedHttpRequest, study_id: str) -> HttpResponse:
    family = get_family_for_user(request.user, study_id)
    require_role(request, Role.PRINCIPAL_INVESTIGATOR)
    if allocation_of(family) is None:
        messages.error(request, _("%(study_id)s has not been randomised.") % {"study_id": family.study_id})
        return redirect("families:detail", study_id=family.study_id)
    assessors = users_with_role(Role.OUTCOME_ASSESSOR, site=family.site).exclude(unblindings__family=family)
    form = UnblindForm(request.POST or None, assessors=assessors)
    step = _step(request, form)
    if step == "confirm":
        assessor = display_name(form.cleaned_data["user"])
        values = {"user": assessor, "study_id": family.study_id}
        return _confirmation_page(
            request,
            form,
            family=family,
            heading=_("Emergency unblinding"),
            details=[
                (_("Family"), family.study_id),
                (_("Reveal the arm to"), _("%(user)s, outcome assessor at %(site)s") % {**values, "site": family.site}),
                (_("Reason for breaking the blind"), form.cleaned_data["reason"]),
            ],
            consequences=[
                _(
                    "%(user)s will see the arm of %(study_id)s on the family's page from now on: the arm only, "
                    "never the list position, the time of the randomisation nor who randomised."
                )
                % values,
                _("This cannot be undone: what was seen cannot be unseen."),
                _("The unblinding is recorded with your name and reason. The data managers are told by e-mail."),
            ],
            confirm_label=_("Confirm: reveal the arm"),
            confirm_class="btn-danger",
        )
    if step == "act":
        try:
            unblinding = services.family_unblind(
                family=family,
                user=form.cleaned_data["user"],
                reason=form.cleaned_data["reason"],
                unblinded_by=request.user,
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.warning(
                request,
                _("The arm of %(study_id)s is revealed to %(user)s. The data managers have been told.")
                % {
                    "study_id": family.study_id,
                    "user": display_name(unblinding.user),
                },
            )
            return redirect("families:detail", study_id=family.study_id)
    return family_form_page(
        request,
        "families/family_form_page.html",
        family,
        form,
        heading=_("Emergency unblinding"),
        submit_label=_("Reveal the arm"),
        intro=_(
            "Only in an emergency: the chosen assessor will see this family's arm from now on. "
            "The unblinding is recorded and the data managers are told. You confirm on the next page."
        ),
    )


# --- Allocation lists ----------------------------------------------------------------------------------


def _list_for_site(site_code: str) -> AllocationList:
    return get_object_or_404(lists_with_generations(), site__code=site_code)


@login_required
def list_overview(request: AuthenticatedHttpRequest) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    states = list_states()
    return render(
        request,
        "randomization/list_overview.html",
        {
            "states": states,
            "can_generate": has_role(request.user, Role.DATA_MANAGER)
            and any(state.allocation_list is None for state in states),
            "unblindings": recent_unblindings(),
        },
    )


def _design_step(request: HttpRequest, form: GenerateForm | ExtendForm, ratio: tuple[int, int] | None):
    """The step of a generate or extend form, and the preview of its design once the form is valid; a design that
    cannot be used sends the data manager back to the form with the error, before any confirmation."""
    step = _step(request, form)
    if step == "form":
        return step, None
    data = form.cleaned_data
    try:
        preview = lists.design_preview(
            block_sizes=data["block_sizes"], ratio=ratio or (data["ratio_intervention"], data["ratio_control"])
        )
    except ValidationError as error:
        add_service_error(form, error)
        return "form", None
    return step, preview


def _design_confirmation(
    request: HttpRequest, form: forms.Form, preview: lists.DesignPreview, *, details: list, **context
) -> HttpResponse:
    """The confirmation of a new list or generation: its design's predictability, and (for a single block size)
    the reason the service requires, asked here."""
    consequences = [
        _(
            "The entries are drawn from a new secret seed and sealed at once: nobody, you included, sees them "
            "until the list is unsealed."
        ),
        _("The commitment to the whole list is stored and shown for printing; it can never be changed."),
    ]
    if preview.single_size:
        consequences.append(
            _(
                "With a single block size, anyone who learns it can foresee the last entry of every block. Give the "
                "reason below: it is kept with the list and printed with its commitment."
            )
        )
    return _confirmation_page(
        request,
        form,
        details=[
            *details,
            (_("Block sizes"), preview.design.describe_sizes().replace(",", ", ")),
            (_("Predictability of this design"), preview.predictability_percent),
        ],
        consequences=consequences,
        visible_fields=("design_reason",) if preview.single_size else (),
        **context,
    )


def _design_reason_only_on_confirmation(form: GenerateForm | ExtendForm) -> None:
    # The reason for a single block size is asked on the confirmation page, where the design is judged; on the
    # form it travels hidden, so that Back keeps it.
    form.fields["design_reason"].widget = forms.HiddenInput()


@login_required
def list_generate(request: AuthenticatedHttpRequest) -> HttpResponse:
    require_role(request, Role.DATA_MANAGER)
    trial_settings = TrialSettings.current()
    sites = Site.objects.filter(allocation_list__isnull=True).order_by("code")
    form = GenerateForm(
        request.POST or None,
        sites=sites,
        initial={
            "block_sizes": trial_settings.allocation_block_sizes,
            "ratio_intervention": trial_settings.allocation_ratio_intervention,
            "ratio_control": trial_settings.allocation_ratio_control,
        },
    )
    step, preview = _design_step(request, form, ratio=None)
    if preview is not None:
        data = form.cleaned_data
        confirmation = partial(
            _design_confirmation,
            request,
            form,
            preview,
            heading=_("Generate an allocation list"),
            details=[
                (_("Site (stratum)"), str(data["site"])),
                (_("Ratio (intervention : control)"), f"{data['ratio_intervention']} : {data['ratio_control']}"),
                (
                    _("Length"),
                    data["length"] or _("the least allowed: the site's expected recruitment plus the margin"),
                ),
            ],
            confirm_label=_("Confirm: generate and seal"),
        )
        if step == "confirm":
            return confirmation()
        try:
            allocation_list = lists.allocation_list_generate(
                site=data["site"],
                generated_by=request.user,
                block_sizes=data["block_sizes"],
                ratio=(data["ratio_intervention"], data["ratio_control"]),
                length=data["length"],
                design_reason=data["design_reason"],
            )
        except ValidationError as error:
            add_service_error(form, error)
            if "design_reason" in form.errors:
                return confirmation()
        else:
            messages.success(
                request,
                _(
                    "The allocation list of %(site)s is generated and sealed. "
                    "Print its commitment for the trial master file."
                )
                % {"site": allocation_list.site.code},
            )
            return redirect("randomization:list", site_code=allocation_list.site.code)
    _design_reason_only_on_confirmation(form)
    return render(
        request,
        "randomization/list_form_page.html",
        {
            "form": form,
            "heading": _("Generate an allocation list"),
            "submit_label": _("Generate and seal"),
            "intro": _(
                "The list is drawn from a secret random seed and sealed at once: nobody, you included, will see "
                "its entries until it is unsealed after recruitment. The next page shows the design's "
                "predictability before anything is drawn."
            ),
            "no_choices": not sites.exists(),
        },
    )


@login_required
def list_detail(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    unsealing = getattr(allocation_list, "unsealing", None)
    suspension = open_suspension(allocation_list)
    context = {
        "allocation_list": allocation_list,
        "state": list_state(allocation_list.site, allocation_list, TrialSettings.current()),
        "segments": list(allocation_list.segments.all()),
        "verifications": [
            (verification, [lists.finding_text(finding) for finding in verification.findings])
            for verification in allocation_list.verifications.select_related("verified_by")[:10]
        ],
        "unsealing": unsealing,
        "suspension": suspension,
        "suspension_findings": [lists.finding_text(finding) for finding in latest_findings(allocation_list)]
        if suspension
        else [],
        "can_write_review": can_write_review(request.user, suspension),
        "can_agree_to_review": can_agree_to_review(request.user, suspension),
        "is_data_manager": has_role(request.user, Role.DATA_MANAGER),
        "can_approve_unsealing": unsealing is not None and can_agree_to_unsealing(request.user, unsealing),
    }
    if not allocation_list.is_sealed:
        context["entries"] = [
            {**vars(entry), "arm_label": Arm(entry.arm).label if entry.arm in Arm.values else "?"}
            for entry in lists.unsealed_entries(allocation_list, viewed_by=request.user)
        ]
        context["list_events"] = unsealed_list_events(allocation_list)
    return render(request, "randomization/list_detail.html", context)


@login_required
def list_commitment(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    return render(
        request,
        "randomization/list_commitment.html",
        {
            "allocation_list": allocation_list,
            "state": list_state(allocation_list.site, allocation_list, TrialSettings.current()),
            "segments": list(allocation_list.segments.all()),
        },
    )


@login_required
def list_canonical_text(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    if allocation_list.is_sealed:
        raise Http404
    text = lists.unsealed_canonical_text(allocation_list, downloaded_by=request.user)
    if text is None:  # damaged generations: there is no text to recompute
        raise Http404
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="allocation-list-{allocation_list.site.code}.txt"'
    return response


@login_required
def list_extend(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, Role.DATA_MANAGER)
    allocation_list = _list_for_site(site_code)
    form = ExtendForm(request.POST or None, initial={"block_sizes": TrialSettings.current().allocation_block_sizes})
    step, preview = _design_step(request, form, ratio=allocation_list.ratio)
    if preview is not None:
        data = form.cleaned_data
        confirmation = partial(
            _design_confirmation,
            request,
            form,
            preview,
            allocation_list=allocation_list,
            heading=_("Extend the allocation list of %(site)s") % {"site": site_code},
            details=[
                (_("Entries to add (at least)"), data["additional"]),
                (_("Reason"), data["reason"]),
            ],
            confirm_label=_("Confirm: extend and seal"),
        )
        if step == "confirm":
            return confirmation()
        try:
            lists.allocation_list_extend(
                allocation_list=allocation_list,
                additional=data["additional"],
                reason=data["reason"],
                extended_by=request.user,
                block_sizes=data["block_sizes"],
                design_reason=data["design_reason"],
            )
        except ValidationError as error:
            add_service_error(form, error)
            if "design_reason" in form.errors:
                return confirmation()
        else:
            messages.success(
                request,
                _("The allocation list of %(site)s is extended, with a new commitment.") % {"site": site_code},
            )
            return redirect("randomization:list", site_code=site_code)
    _design_reason_only_on_confirmation(form)
    return render(
        request,
        "randomization/list_form_page.html",
        {
            "form": form,
            "allocation_list": allocation_list,
            "heading": _("Extend the allocation list of %(site)s") % {"site": site_code},
            "submit_label": _("Extend and seal"),
            "intro": _(
                "New blocks are drawn from a new secret seed and added after the last entry. The new commitment "
                "covers the whole list, including the part already used. The list is verified first, and the next "
                "page shows the design's predictability before anything is drawn."
            ),
        },
    )


@require_POST
@login_required
def list_verify(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, Role.DATA_MANAGER)
    allocation_list = _list_for_site(site_code)
    verification = lists.allocation_list_verify(allocation_list=allocation_list, verified_by=request.user)
    if verification.passed:
        messages.success(request, _("The list of %(site)s passed verification.") % {"site": site_code})
    elif hasattr(verification, "suspension") or open_suspension(allocation_list) is not None:
        messages.error(
            request,
            _(
                "The list of %(site)s FAILED verification and is stopped: no family can be randomised there until "
                "a data manager and the principal investigator have recorded what was found."
            )
            % {"site": site_code},
        )
    else:
        messages.warning(
            request,
            _(
                "The list of %(site)s FAILED verification, with findings that were all reviewed and accepted "
                "before: it keeps allocating."
            )
            % {"site": site_code},
        )
    return redirect("randomization:list", site_code=site_code)


@login_required
def list_review(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    suspension = open_suspension(allocation_list)
    if not can_write_review(request.user, suspension):
        return redirect("randomization:list", site_code=site_code)
    form = ReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            lists.allocation_list_review_suspension(
                allocation_list=allocation_list,
                finding=form.cleaned_data["finding"],
                decision=form.cleaned_data["decision"],
                reviewed_by=request.user,
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.info(
                request,
                _("What was found is recorded; the list allocates again once the other role agrees."),
            )
            return redirect("randomization:list", site_code=site_code)
    return render(
        request,
        "randomization/list_form_page.html",
        {
            "form": form,
            "allocation_list": allocation_list,
            "heading": _("Record what was found: the list of %(site)s") % {"site": site_code},
            "submit_label": _("Record"),
            "intro": _(
                "The list stopped when it failed verification. Write what was found behind the findings and what "
                "you decided. A person holding the other role (data manager or principal investigator) must agree "
                "before the list allocates again; these findings will then no longer stop it, new ones will."
            ),
            "findings": [lists.finding_text(finding) for finding in latest_findings(allocation_list)],
        },
    )


def _agree(request: AuthenticatedHttpRequest, site_code: str, agree, done: str, level: int) -> HttpResponse:
    """The second person's agreement (to an unsealing, to a stopped list's review): `agree` is the list service,
    `done` the message once agreed."""
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    try:
        agree(allocation_list=allocation_list, approved_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.add_message(request, level, done % {"site": site_code})
    return redirect("randomization:list", site_code=site_code)


@require_POST
@login_required
def list_review_approve(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    return _agree(
        request,
        site_code,
        lists.allocation_list_approve_review,
        _("The allocation list of %(site)s allocates again."),
        messages.SUCCESS,
    )


@login_required
def list_unseal(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    require_role(request, *LIST_ROLES)
    allocation_list = _list_for_site(site_code)
    if hasattr(allocation_list, "unsealing"):
        return redirect("randomization:list", site_code=site_code)
    form = UnsealRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            lists.allocation_list_request_unsealing(
                allocation_list=allocation_list, reason=form.cleaned_data["reason"], requested_by=request.user
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.info(
                request,
                _("Unsealing of the list of %(site)s is asked for; it needs the agreement of the other role.")
                % {"site": site_code},
            )
            return redirect("randomization:list", site_code=site_code)
    return render(
        request,
        "randomization/list_form_page.html",
        {
            "form": form,
            "allocation_list": allocation_list,
            "heading": _("Unseal the allocation list of %(site)s") % {"site": site_code},
            "submit_label": _("Ask to unseal"),
            "intro": _(
                "Unsealing shows every entry of the list and ends randomisation from it. It takes two people: "
                "a data manager and a principal investigator."
            ),
        },
    )


@require_POST
@login_required
def list_unseal_approve(request: AuthenticatedHttpRequest, site_code: str) -> HttpResponse:
    return _agree(
        request,
        site_code,
        lists.allocation_list_approve_unsealing,
        _("The allocation list of %(site)s is unsealed."),
        messages.WARNING,
    )


@login_required
def recruitment_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not can_see_recruitment(request.user):
        raise PermissionDenied
    return render(request, "randomization/recruitment.html", {"recruitment": recruitment(request.user)})
