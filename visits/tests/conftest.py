"""Family Partners at Øvre Eiker that the visits tests share; a test module that needs another capacity defines its
own fixture of the same name."""

import pytest

from visits.models import PartnerProfile
from visits.tests.factories import partner


@pytest.fixture
def fiona(oei) -> PartnerProfile:
    return partner(oei, "fiona", first_name="Fiona", last_name="Fjell")


@pytest.fixture
def gunnar(oei) -> PartnerProfile:
    return partner(oei, "gunnar", first_name="Gunnar", last_name="Grov")
