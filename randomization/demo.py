"""The demo trial's allocation lists and randomisations (trial.demo): a list for every site, and every consented
family randomised but the last at each site (left to randomise in the browser); the last randomisation is marked
as made in error."""

from families.models import Consent, ConsentDecision, FamilyStatus
from randomization import services
from randomization.lists import allocation_list_generate
from trial.demo import Demo
from trial.models import Site


def load_demo_allocations(demo: Demo) -> str:
    data_manager = demo.users["datamanager"]
    for site in Site.objects.filter(allocation_list__isnull=True):
        allocation_list_generate(site=site, generated_by=data_manager)
    randomised = []
    for site in Site.objects.order_by("code"):
        consents = list(
            Consent.objects.filter(
                decision=ConsentDecision.CONSENTED, family__site=site, family__status=FamilyStatus.CONSENTED
            )
            .select_related("family__site", "recorded_by")
            .order_by("decided_on", "family__number")
        )
        for consent in consents[:-1]:
            randomised.append(
                services.family_randomise(
                    family=consent.family, confirmed_site=site, randomised_by=consent.recorded_by
                ).allocation
            )
    if randomised:
        services.allocation_annotate(
            allocation=randomised[-1],
            reason="Demo: the family had withdrawn its consent by phone the day before.",
            annotated_by=randomised[-1].randomised_by,
        )
    return f"Allocation lists for every site; {len(randomised)} families randomised."
