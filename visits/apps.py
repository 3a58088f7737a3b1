from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = _("Family Partner work")

    def ready(self) -> None:
        # The family page shows the Family Partner's work through a section (families.sections), and a
        # withdrawal ends the intervention through the families app's signal: families never imports visits.
        from families.family_list import register_family_list_part
        from families.sections import register_family_section
        from families.signals import family_withdrawn
        from trial.demo import DemoStep, register_demo_step
        from trial.navigation import MenuItem, register_menu_item
        from trial.roles import Role, has_role
        from visits.demo import load_demo_visits
        from visits.family_list import WaitingListPart
        from visits.sections import InterventionSection
        from visits.selectors import can_see_caseload
        from visits.services import end_intervention_on_withdrawal

        register_family_section(InterventionSection())
        register_family_list_part(WaitingListPart())
        family_withdrawn.connect(end_intervention_on_withdrawal, dispatch_uid="visits.end_intervention_on_withdrawal")
        register_menu_item(
            MenuItem(_("My families"), "visits:partner_home", lambda user: has_role(user, Role.FAMILY_PARTNER), 20)
        )
        register_menu_item(MenuItem(_("Caseload"), "visits:caseload", can_see_caseload, 21))
        register_menu_item(MenuItem(_("Weekly hours"), "visits:dose", can_see_caseload, 22))
        register_demo_step(DemoStep(load_demo_visits, 40))
