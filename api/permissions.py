"""A token's scope, checked before the view's own role checks (which are the pages' checks: the same selectors)."""

from django.utils.translation import gettext as _
from rest_framework import permissions

from api.authentication import token_of
from api.models import Scope


class TokenScope(permissions.BasePermission):
    """The view's `required_scope` (read for safe methods by default) must be among the token's scopes; a user with
    no role in the trial is refused whatever the scope."""

    def has_permission(self, request, view) -> bool:
        token = token_of(request)
        if token is None or not request.user.is_authenticated:
            return False
        scope = getattr(view, "required_scope", Scope.READ)
        if scope not in token.scopes:
            self.message = _("This token does not have the %(scope)s scope.") % {"scope": scope}
            return False
        return True
