"""The demo trial's allocation lists and randomised families (called by `manage.py load_demo`)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from families.models import Family, FamilyStatus
from randomization import services
from trial.models import Site


class Command(BaseCommand):
    help = (
        "Generate the demo sites' allocation lists and randomise the demo's consented families, all but the "
        "last consented at each site (left to randomise in the browser)."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        data_manager = get_user_model().objects.get(username="datamanager")
        for site in Site.objects.filter(allocation_list__isnull=True):
            services.allocation_list_generate(site=site, generated_by=data_manager)
        randomised = []
        for site in Site.objects.order_by("code"):
            consented = list(
                Family.objects.filter(site=site, status=FamilyStatus.CONSENTED)
                .select_related("consent__recorded_by")
                .order_by("consent__decided_on", "number")
            )
            for family in consented[:-1]:
                randomised.append(
                    services.family_randomise(
                        family=family, confirmed_site=site, randomised_by=family.consent.recorded_by
                    ).allocation
                )
        if randomised:
            services.allocation_annotate(
                allocation=randomised[-1],
                reason="Demo: the family had withdrawn its consent by phone the day before.",
                annotated_by=randomised[-1].randomised_by,
            )
        self.stdout.write(f"Allocation lists for every site; {len(randomised)} families randomised.")
