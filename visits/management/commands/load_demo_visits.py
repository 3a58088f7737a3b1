"""The demo trial's Family Partner work (called by `manage.py load_demo`, after the randomisations)."""

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from families.models import Family, FamilyStatus
from randomization.models import Arm
from trial.models import Site, TrialSettings
from visits import services, weeks
from visits.models import Element, PartnerProfile


class Command(BaseCommand):
    help = (
        "Set the demo Family Partner up at Øvre Eiker, assign the first intervention family there to them with a "
        "home visit logged today, and leave the other intervention families on the waiting list."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        users = get_user_model().objects
        oei = Site.objects.get(code="OEI")
        partner, _created = PartnerProfile.objects.get_or_create(
            user=users.get(username="partner"),
            defaults={"site": oei, "capacity": TrialSettings.current().partner_capacity},
        )
        researcher = users.get(username="researcher")
        families = list(
            Family.objects.filter(site=oei, status=FamilyStatus.RANDOMISED, allocation__arm=Arm.INTERVENTION)
            .filter(intervention__isnull=True)
            .order_by("number")
        )
        if not families:
            self.stdout.write("No intervention family at OEI to assign (the lists' draw); the partner has none.")
            return
        today = weeks.today()
        family = families[0]
        services.family_assign(family=family, partner=partner, started_on=today, assigned_by=researcher)
        services.contact_log(
            family=family,
            author=partner.user,
            data=services.ContactInput(
                contact_date=today,
                duration_quarters=6,
                kind="home_visit",
                elements=[Element.HOME_VISITATION, Element.THERAPEUTIC_RELATIONSHIP],
                notes="Demo: first visit; met both parents and agreed on a weekly plan.",
            ),
            token=uuid.uuid4(),
        )
        self.stdout.write(
            f"Family Partner work: {family.study_id} assigned to the demo partner; {len(families) - 1} waiting."
        )
