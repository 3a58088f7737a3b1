from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Messages")

    def ready(self) -> None:
        # Everyone reaches their inbox from the unread count beside the menu, and their profile from their name's
        # menu (templates/base.html); the send log is in the menu of those who see other people's messages.
        from notifications.selectors import can_see_others_messages
        from trial.navigation import MenuItem, register_menu_item

        register_menu_item(MenuItem(_("Send log"), "notifications:log", can_see_others_messages, 80))
