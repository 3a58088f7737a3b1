"""Family Partners, intervention families, assignments and contacts, made through the services like real ones."""

import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from unittest import mock

from django.utils import timezone

from families.models import Family
from families.tests.factories import days_ago, family_in_state
from followups.tests.factories import record_baseline
from randomization import lists
from randomization import services as randomisation
from randomization.models import AllocationList, Arm
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services
from visits.models import Contact, Element, PartnerProfile


def partner(site, username: str, *, capacity: int = 5, **kwargs) -> PartnerProfile:
    """A Family Partner at `site` (the account, its role and membership, and the profile)."""
    user = UserFactory(username=username, roles=[Role.FAMILY_PARTNER], sites=[site], **kwargs)
    return PartnerProfile.objects.create(user=user, site=site, capacity=capacity)


ATTEMPTS = 13


def _list_for(site) -> None:
    if not AllocationList.objects.filter(site=site).exists():
        data_manager = UserFactory(username="factory-data-manager", roles=[Role.DATA_MANAGER])
        # Blocks of two: every other randomisation goes to each arm, so families of either arm come quickly.
        lists.allocation_list_generate(
            site=site,
            generated_by=data_manager,
            block_sizes=[2],
            length=400,
            design_reason="Pairs, so that the tests get families of either arm quickly",
        )


def randomised_family(site, *, researcher, arm: str = Arm.INTERVENTION) -> Family:
    """A family randomised at `site` to `arm` (families randomised on the way to it stay in the other arm)."""
    _list_for(site)
    # Blocks of up to 6 in a 1:1 ratio (the demo's lists) give at most 6 of one arm in a row; pairs at most 2.
    for _attempt in range(ATTEMPTS):
        family = family_in_state("consented", site=site, by=researcher)
        record_baseline(family)
        result = randomisation.family_randomise(family=family, confirmed_site=site, randomised_by=researcher)
        if result.allocation.arm == arm:
            return Family.objects.get(pk=family.pk)
    raise AssertionError(f"no {arm} allocation in {ATTEMPTS} tries")


def assigned_family(site, *, researcher, to: PartnerProfile, started_on: date | None = None) -> Family:
    family = randomised_family(site, researcher=researcher)
    services.family_assign(family=family, partner=to, started_on=started_on or days_ago(0), assigned_by=researcher)
    return Family.objects.get(pk=family.pk)


def contact_input(**overrides) -> services.ContactInput:
    values = {
        "contact_date": days_ago(0),
        "duration_quarters": 8,
        "kind": "home_visit",
        "elements": [Element.HOME_VISITATION, Element.PARENTAL_GUIDANCE],
        "notes": "",
    }
    return services.ContactInput(**{**values, **overrides})


def log_contact(family: Family, *, by, **overrides) -> Contact:
    return services.contact_log(family=family, author=by, data=contact_input(**overrides), token=uuid.uuid4())


@contextmanager
def days_back(days: int):
    """Make what the block makes as if it were `days` days ago (the allocation's date cannot be changed later)."""
    moment = timezone.now() - timedelta(days=days)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield
