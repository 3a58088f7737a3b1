"""The admin shows research records read-only and never deletes them; direct identifiers are not
registered at all (they are reachable only through the family page, by the site's researchers)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin

from families.models import Consent, Family, Screening, Withdrawal
from trial.admin import ReadOnlyAdminMixin


class ResearchRecordAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    # Changes go through the services, which keep the family's life cycle and audit trail.

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history's revert form saves on POST whenever one may view; research records
        # change only through the services, which keep the life cycle and the audit trail.
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(Family)
class FamilyAdmin(ResearchRecordAdmin):
    list_display = ["study_id", "site", "status", "referral_date"]
    list_filter = ["site", "status"]
    search_fields = ["study_id"]


@admin.register(Screening)
class ScreeningAdmin(ResearchRecordAdmin):
    list_display = ["family", "screened_on", "eligible"]
    list_filter = ["eligible"]


@admin.register(Consent)
class ConsentAdmin(ResearchRecordAdmin):
    list_display = ["family", "decision", "decided_on"]


@admin.register(Withdrawal)
class WithdrawalAdmin(ResearchRecordAdmin):
    list_display = ["family", "withdrawn_on", "reason"]
