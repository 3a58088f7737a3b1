"""A randomised family's page costs a fixed number of queries, whoever looks and however long its history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from families.models import Family
from families.tests.test_queries import MAX_DETAIL_QUERIES
from randomization import lists, services
from randomization.models import Arm
from randomization.tests.factories import ready_to_randomise

# The family page's budget, plus the allocation, the PI's list of unblindings, and the timeline's three
# randomisation models.
MAX_RANDOMISED_DETAIL_QUERIES = MAX_DETAIL_QUERIES + 5


@pytest.fixture
def randomised(oei, alice, dina, paula, carol):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    # A control family: the page of an intervention family also carries the Family Partner's section, which is
    # visits' cost, not this app's (and made this test fail for half the random draws).
    while True:
        family = ready_to_randomise(oei, by=alice)
        allocation = services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice).allocation
        if allocation.arm == Arm.CONTROL:
            break
    services.allocation_annotate(allocation=allocation, reason="Consent was withdrawn by phone", annotated_by=alice)
    services.family_unblind(family=family, user=carol, reason="Serious adverse event", unblinded_by=paula)
    return Family.objects.get(pk=family.pk)


@pytest.mark.parametrize("viewer", ["alice", "paula", "carol"])  # researcher; PI; unblinded assessor
def test_it_shows_a_randomised_family_within_the_query_budget(request, client, randomised, viewer):
    client.force_login(request.getfixturevalue(viewer))

    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("families:detail", args=[randomised.study_id]))

    assert response.status_code == 200
    assert b"data-arm" in response.content
    assert len(captured) <= MAX_RANDOMISED_DETAIL_QUERIES, "\n".join(q["sql"] for q in captured.captured_queries)


def test_it_costs_a_blinded_assessor_no_more_than_one_query_for_the_section(client, oei, alice, dina, carol):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = ready_to_randomise(oei, by=alice)
    services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
    client.force_login(carol)

    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("families:detail", args=[family.study_id]))

    assert b"data-arm" not in response.content
    assert len(captured) <= MAX_DETAIL_QUERIES
