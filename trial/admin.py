from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from trial.models import Site, TrialSettings

admin.site.site_header = _("Family Partner trial administration")
admin.site.site_title = _("Family Partner trial")


@admin.register(Site)
class SiteAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "expected_recruitment", "last_family_number"]
    readonly_fields = ["last_family_number"]
    filter_horizontal = ["members"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # A site's families refer to it for ever.
        return False


@admin.register(TrialSettings)
class TrialSettingsAdmin(SimpleHistoryAdmin):
    fieldsets = [
        (_("Eligibility"), {"fields": ["min_parent_age", "max_child_age", "min_struggle_areas"]}),
        (
            _("Recruitment, caseload and intensity"),
            {
                "fields": [
                    "target_sample_size",
                    "partner_capacity",
                    "weekly_hours_target",
                    "intervention_min_months",
                    "intervention_expected_months",
                    "intervention_max_months",
                    "contact_correction_days",
                    "no_contact_days",
                ]
            },
        ),
        (
            _("Follow-up"),
            {"fields": ["follow_up_months", "assessment_window_days_before", "assessment_window_days_after"]},
        ),
        (
            _("Allocation lists"),
            {
                "fields": [
                    "allocation_block_sizes",
                    ("allocation_ratio_intervention", "allocation_ratio_control"),
                    "allocation_margin_percent",
                    ("allocation_low_stock_entries", "allocation_low_stock_percent"),
                ]
            },
        ),
        (
            _("Progression criteria"),
            {
                "fields": [
                    ("progression_recruitment_green", "progression_recruitment_amber"),
                    ("progression_retention_green", "progression_retention_amber"),
                    ("progression_adherence_green", "progression_adherence_amber"),
                ]
            },
        ),
    ]

    def has_add_permission(self, request) -> bool:
        return not TrialSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
