from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trial import health
from trial.roles import Role, has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if has_role(request.user, Role.RESEARCHER, Role.OUTCOME_ASSESSOR, Role.PRINCIPAL_INVESTIGATOR):
        return redirect("families:list")
    if has_role(request.user, Role.DATA_MANAGER):
        return redirect("randomization:lists")
    if has_role(request.user, Role.FAMILY_PARTNER):
        return redirect("visits:partner_home")
    return render(
        request, "trial/home.html", {"manages": has_role(request.user, Role.DATA_MANAGER, Role.ADMINISTRATOR)}
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": health.database_status(), "broker": health.broker_status()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)
