from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = _("Trial")

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started
        from django.db.models.signals import post_save

        from trial.models import TrialSettings, begin_request_cache, end_request_cache, forget_cached_settings
        from trial.navigation import MenuItem, register_menu_item
        from trial.roles import Role, has_role
        from trial.setup import ensure_role_groups

        post_migrate.connect(ensure_role_groups, sender=self)
        request_started.connect(begin_request_cache, dispatch_uid="trial.settings_cache.begin")
        request_finished.connect(end_request_cache, dispatch_uid="trial.settings_cache.end")
        register_menu_item(
            MenuItem(
                # Short in the menu, where the PI has five entries; the page's heading is "Trial settings".
                _("Settings"),
                "trial_settings",
                lambda user: has_role(user, Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR),
                80,
            )
        )
        register_menu_item(MenuItem(_("Administration"), "admin:index", lambda user: user.is_staff, 90))
        post_save.connect(forget_cached_settings, sender=TrialSettings, dispatch_uid="trial.settings_cache.forget")
