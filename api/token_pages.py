"""The "API tokens" page (session, not the API): a user's own tokens, making one (its key shown once, in the POST's
own response) and revoking one. Administrators revoke anyone's in the admin (api/admin.py).

Every signed-in user opens the page: one who has no role in the trial (or lost every role) makes no token, but still
sees and revokes the tokens they made."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from api.models import ApiToken, Scope
from api.token_forms import TokenForm
from api.tokens import NewToken, scopes_for, token_create, token_revoke
from trial.forms import add_service_error
from trial.roles import AuthenticatedHttpRequest


@login_required
def token_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    allowed = scopes_for(request.user)
    if request.method == "POST" and not allowed:
        raise PermissionDenied
    form = TokenForm(request.POST or None, allowed=allowed) if allowed else None
    new: NewToken | None = None
    if form is not None and request.method == "POST" and form.is_valid():
        try:
            new = token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=[Scope.READ, *form.cleaned_data["scopes"]],
                days=form.cleaned_data["days"],
            )
        except ValidationError as error:
            add_service_error(form, error)
        else:
            form = TokenForm(allowed=allowed)
    tokens = ApiToken.objects.filter(user=request.user).select_related("revoked_by")
    # The key is in this response only (no redirect, no session, no message): the middleware marks every page of a
    # signed-in user no-store, so it is not kept by the browser either.
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "new": new,
            "tokens": tokens,
            "me_url": request.build_absolute_uri(reverse("api:me")),
        },
    )


@login_required
def token_revoke_page(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Asks first (GET), revokes on the POST. Only one's own tokens: anyone else's does not exist here (404)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if request.method == "POST":
        token_revoke(token=token, revoked_by=request.user)
        messages.success(request, _("The token “%(name)s” is revoked: it no longer works.") % {"name": token.name})
        return redirect("tokens:list")
    return render(request, "api/token_revoke.html", {"token": token})
