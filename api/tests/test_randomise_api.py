"""POST /api/v1/randomisations/: the randomise page's rules, idempotent, and its races on PostgreSQL."""

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.tests.helpers import api_as
from families.models import Family, FamilyStatus
from families.tests.factories import family_in_state
from families.tests.test_concurrency import run_together
from randomization import lists
from randomization.models import Allocation, AllocationList
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from trial.models import AuditEvent, EventKind
from trial.roles import Role
from trial.tests.factories import UserFactory

RANDOMISE = "/api/v1/randomisations/"
PROBLEM = "urn:family-partner:problem:"


def test_it_randomises_a_family_and_a_retry_gets_the_same_allocation(oei, alice, dina):
    allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)
    api = api_as(alice, "randomise")

    first = api.post(RANDOMISE, {"study_id": family.study_id, "site": "OEI"})
    again = api.post(RANDOMISE, {"study_id": family.study_id, "site": "OEI"})

    assert first.status_code == 201, first.content
    assert first["Location"] == f"/api/v1/families/{family.study_id}/"
    allocation = Allocation.objects.get()
    assert first.json() == {
        "randomisation_id": "OEI-R001",
        "study_id": family.study_id,
        "site": "OEI",
        "stratum": "OEI",
        "arm": allocation.arm,
        "arm_label": allocation.get_arm_display(),
        "randomised_at": first.json()["randomised_at"],
        "randomised_by": "alice",
    }
    assert again.status_code == 200 and again.json() == first.json()
    assert AllocationList.objects.get().used == 1
    calls = AuditEvent.objects.filter(kind=EventKind.API_CALL, subject=family.study_id)
    assert calls.count() == 2
    assert {call.details["status"] for call in calls} == {201, 200}


@pytest.mark.parametrize(
    ("situation", "problem"),
    [
        ("no list", "no-list"),
        ("used up", "list-used-up"),
        ("not consented", "not-consented"),
        ("wrong site", "wrong-site"),
        ("no baseline", "not-ready"),
    ],
)
def test_it_refuses_with_a_conflict_that_says_why(oei, lar, alice, dina, situation, problem):
    alice.trial_sites.add(lar)
    confirmed = "OEI"
    if situation != "no list":
        oei.expected_recruitment = 1
        oei.save()
        allocation_list_for(oei, by=dina, block_sizes=[2])
    if situation == "used up":
        randomised_family(oei, researcher=alice)
        randomised_family(oei, researcher=alice)
    if situation == "not consented":
        family = family_in_state("eligible", site=oei, by=alice)
    elif situation == "no baseline":
        family = family_in_state("consented", site=oei, by=alice)
    else:
        family = ready_to_randomise(oei, by=alice)
    if situation == "wrong site":
        confirmed = "LAR"

    response = api_as(alice, "randomise").post(RANDOMISE, {"study_id": family.study_id, "site": confirmed})

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == f"{PROBLEM}{problem}"
    assert family.study_id in response.json()["detail"] or "OEI" in response.json()["detail"]
    assert Family.objects.get(pk=family.pk).status != FamilyStatus.RANDOMISED
    assert not Allocation.objects.filter(family=family).exists()


def test_a_refusal_is_in_the_audit_trail_with_the_tokens_name(oei, alice):
    family = ready_to_randomise(oei, by=alice)

    response = api_as(alice, "randomise").post(RANDOMISE, {"study_id": family.study_id, "site": "OEI"})

    assert response.status_code == 409
    assert AuditEvent.objects.filter(kind=EventKind.RANDOMISATION_REFUSED, subject=family.study_id).count() == 1
    call = AuditEvent.objects.get(kind=EventKind.API_CALL)
    assert call.details["status"] == 409 and call.details["token"].startswith("test token")


def test_it_answers_who_may_not_randomise_as_the_page_does(oei, lar, alice, bob, carol, paula, dina):
    allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)
    body = {"study_id": family.study_id, "site": "OEI"}

    assert api_as(bob, "randomise").post(RANDOMISE, body).status_code == 404  # another site's family
    assert api_as(alice).post(RANDOMISE, body).status_code == 403  # a token without the randomise scope
    assert api_as(alice, "write").post(RANDOMISE, body).status_code == 403
    assert api_as(carol).post(RANDOMISE, body).status_code == 403  # blinded: no randomise scope to be had
    assert api_as(paula).post(RANDOMISE, body).status_code == 403
    # A researcher who is also an assessor is blinded, and a blinded user never randomises.
    both = UserFactory(username="bea", roles=[Role.RESEARCHER, Role.OUTCOME_ASSESSOR], sites=[oei])
    both_token = api_as(both)
    assert both_token.post(RANDOMISE, body).status_code == 403
    assert api_as(alice, "randomise").post(RANDOMISE, {"study_id": "OEI-999", "site": "OEI"}).status_code == 404
    assert not Allocation.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"site": "OEI"}, ["study_id"]),
        ({"study_id": "OEI-001"}, ["site"]),
        ({"study_id": "OEI-001", "site": "XYZ"}, ["site"]),
        ({"study_id": ["OEI-001"], "site": 7}, ["study_id"]),
    ],
)
def test_it_answers_a_bad_body_with_field_errors(oei, alice, dina, body, fields):
    allocation_list_for(oei, by=dina)
    ready_to_randomise(oei, by=alice)

    response = api_as(alice, "randomise").post(RANDOMISE, body)

    assert response.status_code == 400, response.content
    assert [error["field"] for error in response.json()["errors"]] == fields
    assert not Allocation.objects.exists()


def test_it_speaks_norwegian(oei, alice):
    family = family_in_state("eligible", site=oei, by=alice)

    response = api_as(alice, "randomise", language="nb").post(RANDOMISE, {"study_id": family.study_id, "site": "OEI"})

    assert response.status_code == 409
    assert "Bare en familie som har samtykket" in response.json()["detail"], response.json()


# --- Races (PostgreSQL): each thread its own client, token and database connection ----------------------------


@pytest.mark.postgres
def test_twenty_simultaneous_calls_for_one_family_give_one_allocation(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)
    apis = [api_as(alice, "randomise") for _ in range(20)]

    responses, errors = run_together(
        20, lambda i: apis[i].post(RANDOMISE, {"study_id": family.study_id, "site": "OEI"})
    )

    assert errors == [None] * 20
    assert Counter(response.status_code for response in responses) == {201: 1, 200: 19}
    assert len({(response.json()["randomisation_id"], response.json()["arm"]) for response in responses}) == 1
    allocation = Allocation.objects.get()
    assert allocation.family_id == family.pk
    assert responses[0].json()["randomisation_id"] == allocation.randomisation_id
    assert AllocationList.objects.get(site=oei).used == 1


@pytest.mark.postgres
def test_sixteen_clients_at_one_site_leave_the_list_gapless_and_verifiable(
    transactional_db, postgres, oei, dina, alice
):
    allocation_list = allocation_list_for(oei, by=dina, length=40)
    families = [ready_to_randomise(oei, by=alice) for _ in range(16)]
    apis = [api_as(alice, "randomise") for _ in range(16)]

    responses, errors = run_together(
        16, lambda i: apis[i].post(RANDOMISE, {"study_id": families[i].study_id, "site": "OEI"})
    )

    assert errors == [None] * 16
    assert [response.status_code for response in responses] == [201] * 16
    allocations = list(Allocation.objects.select_related("entry"))
    assert sorted(allocation.position for allocation in allocations) == list(range(1, 17))
    assert Counter(allocation.family_id for allocation in allocations) == {family.pk: 1 for family in families}
    assert sorted(response.json()["randomisation_id"] for response in responses) == [
        f"OEI-R{position:03d}" for position in range(1, 17)
    ]
    for allocation in allocations:
        assert allocation.arm == allocation.entry.sealed_arm
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 16
    assert lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina).passed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=14),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "study_id": st.sampled_from(["OEI-001", "OEI-002", "LAR-001", "OEI-001\x00", ""]) | json_values,
            "site": st.sampled_from(["OEI", "LAR", "oei", "\x00"]) | json_values,
        },
    )
)
def test_no_randomise_body_gives_a_500_or_a_second_allocation(oei, lar, alice, dina, body):
    if not AllocationList.objects.exists():
        allocation_list_for(oei, by=dina)
        ready_to_randomise(oei, by=alice)
        family_in_state("eligible", site=oei, by=alice)
    api = api_as(alice, "randomise")

    response = api.client.post(RANDOMISE, json.dumps(body), content_type="application/json", **api.headers)

    assert response.status_code in (200, 201, 400, 404, 409), response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
    assert Allocation.objects.count() <= 1
    assert Allocation.objects.count() == Family.objects.filter(status=FamilyStatus.RANDOMISED).count()
