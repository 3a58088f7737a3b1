"""The demo trial's allocation lists and randomised families (called by `manage.py load_demo`)."""

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from families import services as family_services
from families.models import ReferralSource, StruggleArea
from randomization import services
from trial.models import Site


class Command(BaseCommand):
    help = "Generate the demo sites' allocation lists and randomise a few demo families."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        data_manager = User.objects.get(username="datamanager")
        researcher = User.objects.get(username="researcher")
        larvik = User.objects.get(username="researcher.larvik")
        sites = {site.code: site for site in Site.objects.all()}
        for site in sites.values():
            if not hasattr(site, "allocation_list"):
                services.allocation_list_generate(site=site, generated_by=data_manager)
        today = timezone.localdate()
        randomised = []
        for site, by, count in ((sites["OEI"], researcher, 4), (sites["LAR"], larvik, 2)):
            for n in range(count):
                family = family_services.family_register(
                    site=site,
                    referral_date=today - timedelta(days=120 - 10 * n),
                    referral_source=ReferralSource.CHILD_WELFARE_MEASURE,
                    parent_birth_years=[1988],
                    child_birth_dates=[today - timedelta(days=365 * (3 + n) + 12)],
                    identifiers=family_services.Identifiers(contact_name=f"Demo Forelder R{n}", phone="913 00 000"),
                    registered_by=by,
                    token=uuid.uuid4(),
                )
                family_services.family_screen(
                    family=family,
                    screened_on=today - timedelta(days=110 - 10 * n),
                    involved_with_child_welfare=True,
                    harmful_circumstances=True,
                    struggle_areas=[StruggleArea.EMPLOYMENT, StruggleArea.SOCIAL_ISOLATION],
                    screened_by=by,
                    token=uuid.uuid4(),
                )
                family_services.family_record_consent(
                    family=family,
                    decided_on=today - timedelta(days=100 - 10 * n),
                    form_version="v1.2",
                    obtained_by=by,
                    recorded_by=by,
                    token=uuid.uuid4(),
                )
                randomised.append(
                    services.family_randomise(family=family, confirmed_site=site, randomised_by=by).allocation
                )
        services.allocation_annotate(
            allocation=randomised[-1],
            reason="Demo: the family had withdrawn its consent by phone the day before.",
            annotated_by=larvik,
        )
        self.stdout.write(f"Allocation lists for {', '.join(sorted(sites))}; {len(randomised)} families randomised.")
