from django.contrib import admin
from django.http import HttpRequest

from trial.roles import Role, users_with_role
from visits.models import PartnerProfile


@admin.register(PartnerProfile)
class PartnerProfileAdmin(admin.ModelAdmin):
    """The administrator sets a Family Partner up: their account, site and capacity (at most the trial's limit).
    Research records of this app (assignments, periods, contacts) are not in the admin: the pages show them."""

    list_display = ["__str__", "site", "capacity", "active_families", "status"]
    list_filter = ["site", "status"]
    readonly_fields = ["active_families"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # Only accounts that hold the Family Partner role can be set up as one.
            kwargs["queryset"] = users_with_role(Role.FAMILY_PARTNER)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: PartnerProfile | None = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        from trial.models import TrialSettings

        return {"capacity": TrialSettings.current().partner_capacity, **super().get_changeform_initial_data(request)}
