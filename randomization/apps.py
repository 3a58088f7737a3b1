from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RandomizationConfig(AppConfig):
    name = "randomization"
    verbose_name = _("Randomisation")

    def ready(self) -> None:
        # The family page shows the allocation through the section this app registers with it, so
        # that families (a lower layer) never imports randomisation.
        from families.sections import register_family_section
        from randomization.sections import AllocationSection

        register_family_section(AllocationSection())
