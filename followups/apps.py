from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-up assessments")

    def ready(self) -> None:
        # The schedule follows the family's life through the signals of the layers below (which never import
        # this app), and the baseline rule is a precondition of randomisation registered with that app.
        from families.sections import register_family_section
        from families.signals import family_consented, family_withdrawn
        from followups import services
        from followups.demo import load_demo_follow_ups, record_demo_baselines
        from followups.sections import FollowUpSection
        from followups.selectors import can_see_follow_ups
        from randomization.preconditions import register_randomisation_check
        from randomization.signals import family_randomised
        from trial.demo import DemoStep, register_demo_step
        from trial.navigation import MenuItem, register_home, register_menu_item
        from trial.roles import Role, has_role
        from trial.services import trial_settings_changed

        family_consented.connect(services.schedule_baseline_on_consent, dispatch_uid="followups-baseline")
        family_randomised.connect(services.schedule_follow_ups_on_randomisation, dispatch_uid="followups-schedule")
        family_withdrawn.connect(services.stop_schedule_on_withdrawal, dispatch_uid="followups-withdrawal")
        trial_settings_changed.connect(
            services.schedule_recompute_on_settings_change, dispatch_uid="followups-recompute"
        )
        register_randomisation_check(services.baseline_refusal)
        register_family_section(FollowUpSection())
        register_menu_item(MenuItem(_("Follow-up"), "followups:grid", can_see_follow_ups, 40))
        # An assessor's day starts at their worklist.
        register_home("followups:worklist", lambda user: has_role(user, Role.OUTCOME_ASSESSOR), 10)
        register_demo_step(DemoStep(record_demo_baselines, 25))
        register_demo_step(DemoStep(load_demo_follow_ups, 50))
