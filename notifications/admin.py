from django.contrib import admin

from notifications.models import Message, Preference
from trial.admin import ReadOnlyAdminMixin


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The administrator looks up a message's delivery (the send log at /messages/log/ is the users' page). Read
    only: messages are written by the services in their cause's transaction, and cancelled or sent again on the
    send log, with a reason. The context holds study IDs and site codes only; a receipt's text is never shown."""

    list_display = ["kind", "about", "recipient", "due_on", "status", "attempts", "sent_at", "read_at"]
    list_filter = ["status", "kind", "site"]
    search_fields = ["about", "recipient__username"]
    date_hierarchy = "due_on"
    list_select_related = ["recipient"]


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each user sets their own language on /profile/; the administrator sees it."""

    list_display = ["user", "language"]
    list_filter = ["language"]
    search_fields = ["user__username"]
