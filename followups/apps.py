from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-up assessments")

    def ready(self) -> None:
        # The schedule follows the family's life through the signals of the layers below (which never import
        # this app), and the baseline rule is a precondition of randomisation registered with that app.
        from families.signals import family_consented, family_withdrawn
        from followups import services
        from randomization.signals import family_randomised

        family_consented.connect(services.schedule_baseline_on_consent, dispatch_uid="followups-baseline")
        family_randomised.connect(services.schedule_follow_ups_on_randomisation, dispatch_uid="followups-schedule")
        family_withdrawn.connect(services.stop_schedule_on_withdrawal, dispatch_uid="followups-withdrawal")
