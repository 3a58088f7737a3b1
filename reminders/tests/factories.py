"""People and families for the reminders' tests, made through the services like real ones (dates follow the
clock, which the tests move with time-machine)."""

from datetime import date

from django.utils import timezone

from families.models import Family
from families.tests.factories import family_in_state
from followups.tests.factories import record_baseline
from randomization import services as randomisation
from randomization.models import Arm
from trial.roles import Role, users_with_role
from trial.tests.factories import UserFactory
from visits.tests.factories import _list_for


def person(username: str, *roles: str, sites=()):
    """An account with an e-mail address (the mail is sent to it) holding `roles` at `sites`."""
    return UserFactory(username=username, roles=list(roles), sites=list(sites), email=f"{username}@example.org")


def complete_baseline(family: Family, on: date | None = None) -> None:
    """The baseline recorded as completed through the assessor's service (on `on`, default today) by an assessor
    the site has (no extra assessor who would receive reminders too), so that the family may be randomised with the
    trial's baseline rule."""
    assessor = users_with_role(Role.OUTCOME_ASSESSOR).filter(trial_sites=family.site).order_by("pk").first()
    record_baseline(family, on=on or timezone.localdate(), by=assessor)


def randomised(site, *, researcher, arm: str = Arm.INTERVENTION) -> Family:
    """A family consented, its baseline done, and randomised today to `arm` (families randomised on the way to
    it stay in the other arm)."""
    _list_for(site)
    for _attempt in range(4):
        family = family_in_state("consented", site=site, by=researcher)
        complete_baseline(family)
        result = randomisation.family_randomise(family=family, confirmed_site=site, randomised_by=researcher)
        if result.allocation.arm == arm:
            return Family.objects.get(pk=family.pk)
    raise AssertionError(f"no {arm} allocation in four tries")


__all__ = ["Role", "complete_baseline", "person", "randomised"]
