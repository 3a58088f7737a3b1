from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from trial.roles import Role, users_with_role
from visits import services
from visits.models import PartnerProfile


class PartnerProfileForm(forms.ModelForm):
    class Meta:
        model = PartnerProfile
        fields = ["user", "site", "capacity", "status"]

    def clean(self):
        cleaned_data = super().clean() or {}
        capacity = cleaned_data.get("capacity")
        if capacity is not None:
            # The service's own check (save_model then saves through the service): its refusals are form errors.
            # The admin's form runs in the transaction that saves it, so the partner's row stays locked until then.
            try:
                services.partner_capacity_check(capacity=capacity, partner_pk=self.instance.pk)
            except ValidationError as error:
                self.add_error(None, error)  # on the fields it names
        return cleaned_data


@admin.register(PartnerProfile)
class PartnerProfileAdmin(admin.ModelAdmin):
    """The administrator sets a Family Partner up: their account, site and capacity (at most the trial's limit).
    Research records of this app (assignments, periods, contacts) are not in the admin: the pages show them."""

    form = PartnerProfileForm
    list_display = ["__str__", "site", "capacity", "active_families", "status"]
    list_filter = ["site", "status"]
    readonly_fields = ["active_families"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            # Only accounts that hold the Family Partner role can be set up as one.
            kwargs["queryset"] = users_with_role(Role.FAMILY_PARTNER)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: PartnerProfile, form, change: bool) -> None:
        services.partner_profile_save(profile=obj, saved_by=request.user)  # type: ignore[arg-type]  # logged in

    def has_delete_permission(self, request: HttpRequest, obj: PartnerProfile | None = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        from trial.models import TrialSettings

        return {"capacity": TrialSettings.current().partner_capacity, **super().get_changeform_initial_data(request)}
