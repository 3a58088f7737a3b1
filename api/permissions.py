"""A token's scope, checked before the view's own role checks (which are the pages' checks: the same selectors)."""

from django.utils.translation import gettext as _
from rest_framework import permissions

from api.authentication import token_of
from api.models import Scope
from api.tokens import scopes_for


class TokenScope(permissions.BasePermission):
    """The view's `required_scope` (read for safe methods by default) must be among the token's scopes and among
    those the user's roles allow now (`scopes_for`: a user who lost a role loses its scope on every token they made);
    a user with no role in the trial is refused whatever the scope."""

    def has_permission(self, request, view) -> bool:
        token = token_of(request)
        if token is None or not request.user.is_authenticated:
            return False
        scope = getattr(view, "required_scope", Scope.READ)
        if scope not in token.scopes:
            self.message = _("This token does not have the %(scope)s scope.") % {"scope": scope}
            return False
        allowed = scopes_for(request.user)
        if not allowed:
            self.message = _("Your account has no role in the trial.")
            return False
        if scope not in allowed:
            self.message = _("Your roles no longer allow the %(scope)s scope.") % {"scope": scope}
            return False
        return True
