from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FamiliesConfig(AppConfig):
    name = "families"
    verbose_name = _("Families")

    def ready(self) -> None:
        from families.demo import load_demo_families
        from families.selectors import ACT_ROLES, VIEW_ROLES
        from trial.demo import DemoStep, register_demo_step
        from trial.navigation import MenuItem, register_menu_item
        from trial.roles import has_role

        register_menu_item(MenuItem(_("Families"), "families:list", lambda user: has_role(user, *VIEW_ROLES), 10))
        register_menu_item(
            MenuItem(_("Register a family"), "families:register", lambda user: has_role(user, *ACT_ROLES), 11)
        )
        register_demo_step(DemoStep(load_demo_families, 10))
