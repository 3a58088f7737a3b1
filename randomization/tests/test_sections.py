"""The allocation's section of the family page, by who looks: an outcome assessor unblinded for one family sees
that family's arm and nothing more of the randomisation (its list position, time and who randomised would narrow
down the arms of the families randomised around it), nor of its timeline."""

import re

import pytest
from django.urls import reverse
from django.utils import formats, timezone

from randomization import services
from randomization.models import Arm
from randomization.tests.factories import allocation_list_for, randomised_family

ANNOTATION = "Consent had been withdrawn by phone the day before"


@pytest.fixture
def unblinded(oei, dina, alice, carol, paula):
    allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    allocation = randomised_family(oei, researcher=alice)  # position 2
    services.allocation_annotate(allocation=allocation, reason=ANNOTATION, annotated_by=alice)
    services.family_unblind(family=allocation.family, user=carol, reason="Serious adverse event", unblinded_by=paula)
    return allocation


def test_an_unblinded_assessor_sees_the_arm_and_nothing_more_of_the_randomisation(client, unblinded, carol, alice):
    client.force_login(carol)

    response = client.get(reverse("families:detail", args=[unblinded.family.study_id]))

    page = response.content.decode()
    section = re.search(r"<section[^>]*data-allocation-section.*?</section>", page, re.DOTALL).group(0)
    assert f"data-arm>{Arm(unblinded.arm).label}<" in section
    randomised_at = formats.date_format(timezone.localtime(unblinded.randomised_at), "SHORT_DATETIME_FORMAT")
    for revealing in ("List position", randomised_at, alice.get_full_name(), "Randomised in error"):
        assert revealing not in section, revealing
    # No event of the randomisation's records on the timeline (the family's own status change is the families
    # app's, and shown to every blinded user alike).
    for event in ("Allocation added", "Randomised in error added", ANNOTATION):
        assert event not in page, event


def test_the_researcher_still_sees_the_whole_randomisation(client, unblinded, alice):
    client.force_login(alice)

    page = client.get(reverse("families:detail", args=[unblinded.family.study_id])).content.decode()

    assert "List position" in page and ANNOTATION in page and "Allocation added" in page
