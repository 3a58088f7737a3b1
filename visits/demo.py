"""The demo trial's Family Partner work (trial.demo): the demo partner at Øvre Eiker, the first intervention family
there assigned to them with a home visit logged today, the other intervention families on the waiting list."""

import uuid

from families.models import Family, FamilyStatus
from randomization.selectors import intervention_families
from trial.demo import Demo
from trial.models import TrialSettings
from visits import services, weeks
from visits.models import Element, PartnerProfile


def load_demo_visits(demo: Demo) -> str:
    oei = demo.sites["OEI"]
    partner = PartnerProfile.objects.filter(user=demo.users["partner"]).first() or services.partner_profile_save(
        profile=PartnerProfile(user=demo.users["partner"], site=oei, capacity=TrialSettings.current().partner_capacity),
        saved_by=demo.users["admin"],
    )
    researcher = demo.users["researcher"]
    families = list(
        intervention_families(Family.objects.filter(site=oei, status=FamilyStatus.RANDOMISED))
        .filter(intervention__isnull=True)
        # Not the family the demo marks "randomised in error" (randomization.demo): a Family Partner for it needs a
        # confirmation the demo does not give. Which arm it drew depends on the lists' draw.
        .filter(allocation__annotation__isnull=True)
        .order_by("number")
    )
    if not families:
        return "No intervention family at OEI to assign (the lists' draw); the partner has none."
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
    return f"Family Partner work: {family.study_id} assigned to the demo partner; {len(families) - 1} waiting."
