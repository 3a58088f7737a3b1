from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from trial.forms import TrialSettingsForm
from trial.models import TRIAL_SETTINGS_GROUPS, Site, TrialSettings
from trial.services import trial_settings_change

admin.site.site_header = _("Family Partner trial administration")
admin.site.site_title = _("Family Partner trial")


class ReadOnlyAdminMixin:
    """For records that only the services write (messages, tokens, research records): the admin shows them and
    never adds, changes or deletes one. Put it before the ModelAdmin class."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Site)
class SiteAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "expected_recruitment", "last_family_number", "recruitment_state"]
    # Recruitment is opened, paused and closed on /settings/sites/ (trial.services.site_set_recruitment_state): with a
    # reason, by a data manager or the PI, under the lock registrations take.
    readonly_fields = ["last_family_number", "recruitment_state", "recruitment_state_reason"]
    filter_horizontal = ["members"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # A site's families refer to it for ever.
        return False


@admin.register(TrialSettings)
class TrialSettingsAdmin(SimpleHistoryAdmin):
    """The same settings, form and rules as the app's settings page (/settings/), with the reason it asks."""

    form = TrialSettingsForm
    fieldsets = [(label, {"fields": names}) for label, names in TRIAL_SETTINGS_GROUPS] + [
        (_("Reason for the change"), {"fields": ["reason"]})
    ]

    def has_add_permission(self, request) -> bool:
        return not TrialSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # The service locks the row and writes only what changed, with the reason in the history.
        trial_settings_change(changes=form.changes(), reason=form.cleaned_data["reason"], changed_by=request.user)
        obj.refresh_from_db()
