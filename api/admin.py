"""Personal API tokens in the admin: read-only, for administrators, who revoke anyone's token here ("Revoke selected
tokens", through `api.tokens.token_revoke`). Nobody adds, changes or deletes a token in the admin, and the hash is
never shown."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.models import ApiToken
from api.tokens import may_revoke_any_token, token_revoke
from trial.admin import ReadOnlyAdminMixin

# The list and the detail show the same, and never the hash.
COLUMNS = (
    "user",
    "name",
    "prefix",
    "scope_list",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "revoked_by",
)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = COLUMNS
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username", "name", "prefix"]
    fields = readonly_fields = COLUMNS
    list_select_related = ["user", "revoked_by"]
    actions = ["revoke_selected"]

    @admin.display(description=_("scopes"))
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    # Administrators (the role, or a superuser) see the tokens, whatever the model permissions of their groups.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and may_revoke_any_token(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token, revoked_by=request.user)  # type: ignore[arg-type]
            revoked += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked) % {"count": revoked},
            messages.SUCCESS,
        )
