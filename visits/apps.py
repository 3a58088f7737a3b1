from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = _("Family Partner work")

    def ready(self) -> None:
        # The family page shows the Family Partner's work through a section (families.sections), and a
        # withdrawal ends the intervention through the families app's signal: families never imports visits.
        from families.sections import register_family_section
        from families.signals import family_withdrawn
        from visits.sections import InterventionSection
        from visits.services import end_intervention_on_withdrawal

        register_family_section(InterventionSection())
        family_withdrawn.connect(end_intervention_on_withdrawal, dispatch_uid="visits.end_intervention_on_withdrawal")
