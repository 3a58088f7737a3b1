from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RandomizationConfig(AppConfig):
    name = "randomization"
    verbose_name = _("Randomisation")

    def ready(self) -> None:
        # The family page shows the allocation through the section this app registers with it, so
        # that families (a lower layer) never imports randomisation.
        from families.family_list import register_family_list_part
        from families.sections import register_family_section
        from randomization.demo import load_demo_allocations
        from randomization.family_list import AllocationListPart
        from randomization.kinds import register_kinds
        from randomization.sections import AllocationSection
        from randomization.selectors import LIST_ROLES, can_see_recruitment
        from trial.demo import DemoStep, register_demo_step
        from trial.navigation import MenuItem, register_menu_item
        from trial.roles import has_role

        register_kinds()
        register_family_section(AllocationSection())
        register_family_list_part(AllocationListPart())
        register_menu_item(
            MenuItem(_("Randomisation"), "randomization:lists", lambda user: has_role(user, *LIST_ROLES), 30)
        )
        register_menu_item(MenuItem(_("Recruitment"), "randomization:recruitment", can_see_recruitment, 35))
        register_demo_step(DemoStep(load_demo_allocations, 30))
