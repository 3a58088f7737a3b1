"""The people the reminders' tests share: every account has an e-mail address, so that delivery sends mail."""

import pytest

from reminders.tests.factories import person
from trial.roles import Role


@pytest.fixture
def alice(oei):
    """A researcher at Øvre Eiker."""
    return person("alice", Role.RESEARCHER, sites=[oei])


@pytest.fixture
def bob(lar):
    """A researcher at Larvik."""
    return person("bob", Role.RESEARCHER, sites=[lar])


@pytest.fixture
def carol(oei):
    """An outcome assessor (blinded) at Øvre Eiker."""
    return person("carol", Role.OUTCOME_ASSESSOR, sites=[oei])


@pytest.fixture
def conrad(lar):
    """An outcome assessor at Larvik."""
    return person("conrad", Role.OUTCOME_ASSESSOR, sites=[lar])


@pytest.fixture
def paula(db):
    """The principal investigator."""
    return person("paula", Role.PRINCIPAL_INVESTIGATOR)
