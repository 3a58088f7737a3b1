from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RemindersConfig(AppConfig):
    """The top layer: it reads every app and registers its kinds of message, its receivers of the lower layers'
    events and its demo step; nothing imports it."""

    name = "reminders"
    verbose_name = _("Reminders")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from notifications.kinds import register_kind
        from randomization.signals import family_randomised
        from reminders import events
        from reminders.demo import load_demo_reminders
        from reminders.kinds import KINDS
        from trial.demo import DemoStep, register_demo_step
        from visits.models import Assignment

        for kind in KINDS:
            register_kind(kind)
        post_save.connect(events.partner_told_of_new_family, sender=Assignment, dispatch_uid="reminders-new-family")
        family_randomised.connect(events.randomisation_receipt, dispatch_uid="reminders-randomisation-receipt")
        # After the other apps' steps (families 10.., randomisation, visits 40): the inbox shows their reminders.
        register_demo_step(DemoStep(load_demo_reminders, 90))
