"""GET/POST /api/v1/families/, GET /api/v1/families/{study_id}/, POST .../screenings/: the family pages' rules."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.tests.helpers import Api, api_as, key_for
from families import services
from families.models import Family, FamilyStatus, Screening
from families.tests.factories import days_ago, family_in_state
from families.tests.test_concurrency import run_together
from randomization.services import family_unblind
from randomization.tests.factories import allocation_list_for, randomised_family
from trial.models import AuditEvent, EventKind, RecruitmentState

FAMILIES = "/api/v1/families/"
# What must never leave through the API: the factories' identifiers and birth dates' years, and the arm.
IDENTIFIERS = ("Kari", "Nordmann", "91234567")
ARMS = ('"intervention"', '"control"')


def family_url(family) -> str:
    return f"{FAMILIES}{family.study_id}/"


def registration(site_code: str = "OEI", **changes) -> dict:
    body = {
        "site": site_code,
        "referral_date": days_ago(3).isoformat(),
        "referral_source": "health_service",
        "parent_birth_years": [1988],
        "child_birth_dates": [days_ago(3 * 365).isoformat()],
        "identifiers": {"contact_name": "Ola Nordmann", "phone": "912 34 567", "national_id_number": ""},
    }
    body.update(changes)
    return body


def screening(**changes) -> dict:
    body = {
        "screened_on": days_ago(1).isoformat(),
        "involved_with_child_welfare": True,
        "harmful_circumstances": True,
        "struggle_areas": ["finances", "housing"],
    }
    body.update(changes)
    return body


# --- Reading -----------------------------------------------------------------------------------------------


def test_it_lists_the_researchers_own_sites_families_without_identifiers(oei, lar, alice, bob):
    mine = family_in_state("consented", site=oei, by=alice)
    theirs = family_in_state("referred", site=lar, by=bob)

    response = api_as(alice).get(FAMILIES)

    assert response.status_code == 200
    body = response.json()
    assert [row["study_id"] for row in body["results"]] == [mine.study_id]
    assert body["next"] is None
    row = body["results"][0]
    assert row["site"] == "OEI"
    assert row["status"] == "consented"
    assert row["screening"]["eligible"] is True and row["screening"]["failed_criteria"] == []
    assert row["consent"]["decision"] == "consented"
    assert row["allocation"] is None and row["randomised_on"] is None
    text = response.content.decode()
    assert not any(word in text for word in IDENTIFIERS)
    assert "birth" not in text
    assert api_as(alice).get(family_url(theirs)).status_code == 404
    assert api_as(bob).get(family_url(mine)).status_code == 404


def test_it_gives_the_arm_to_the_sites_researcher_and_the_pi(oei, lar, alice, bob, dina, paula):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)

    for user in (alice, paula):
        (row,) = [
            r for r in api_as(user).get(FAMILIES).json()["results"] if r["study_id"] == allocation.family.study_id
        ]
        assert row["status"] == "randomised"
        assert row["allocation"]["arm"] == allocation.arm
        assert row["allocation"]["randomisation_id"] == allocation.randomisation_id
        assert row["allocation"]["stratum"] == "OEI"
        assert row["randomised_at"] is not None and row["modified_at"] is not None
    assert api_as(alice).get(family_url(allocation.family)).json()["allocation"]["arm"] == allocation.arm


def test_it_never_gives_a_blinded_assessor_the_arm_nor_times_after_randomisation(oei, alice, carol, dina):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    assessor = api_as(carol)

    listed = assessor.get(FAMILIES)
    read = assessor.get(family_url(allocation.family))

    for response in (listed, read):
        assert response.status_code == 200
        text = response.content.decode()
        assert not any(arm in text for arm in ARMS)
        assert allocation.randomisation_id not in text
    row = read.json()
    assert row["status"] == "randomised"
    assert row["allocation"] is None
    assert row["randomised_on"] == timezone.localdate(allocation.randomised_at).isoformat()
    assert row["randomised_at"] is None and row["modified_at"] is None
    assert row["modified_on"] == row["randomised_on"]


def test_an_assessor_unblinded_for_one_family_sees_that_familys_arm_only(oei, alice, carol, dina, paula):
    allocation_list_for(oei, by=dina)
    unblinded = randomised_family(oei, researcher=alice)
    other = randomised_family(oei, researcher=alice)
    family_unblind(family=unblinded.family, user=carol, reason="A serious adverse event.", unblinded_by=paula)

    rows = {row["study_id"]: row for row in api_as(carol).get(FAMILIES).json()["results"]}

    assert rows[unblinded.family.study_id]["allocation"]["arm"] == unblinded.arm
    # The arm, not the receipt: no list position, no time.
    assert rows[unblinded.family.study_id]["allocation"]["randomisation_id"] is None
    assert rows[unblinded.family.study_id]["allocation"]["randomised_at"] is None
    assert rows[other.family.study_id]["allocation"] is None


@pytest.mark.parametrize("user", ["frank", "dina", "adam"])
def test_it_refuses_the_list_to_roles_that_do_not_see_families(request, oei, user):
    response = api_as(request.getfixturevalue(user)).get(FAMILIES)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_it_filters_by_site_status_and_modified_since(oei, lar, alice, paula, bob):
    referred = family_in_state("referred", site=oei, by=alice)
    consented = family_in_state("consented", site=oei, by=alice)
    at_lar = family_in_state("referred", site=lar, by=bob)
    pi = api_as(paula)

    def listed(**params) -> list[str]:
        response = pi.get(FAMILIES, params)
        assert response.status_code == 200, response.content
        return [row["study_id"] for row in response.json()["results"]]

    assert listed() == [referred.study_id, consented.study_id, at_lar.study_id]
    assert listed(site="LAR") == [at_lar.study_id]
    assert listed(status="consented") == [consented.study_id]
    assert listed(site="OEI", status="referred") == [referred.study_id]
    moment = timezone.now()
    assert listed(modified_since=moment.isoformat()) == []
    services.family_screen(
        family=referred,
        screened_on=days_ago(1),
        involved_with_child_welfare=True,
        harmful_circumstances=False,
        struggle_areas=[],
        screened_by=alice,
        token=uuid.uuid4(),
    )
    assert listed(modified_since=moment.isoformat()) == [referred.study_id]
    assert listed(modified_since=(moment - timedelta(days=1)).isoformat()) == [
        referred.study_id,
        consented.study_id,
        at_lar.study_id,
    ]


def test_a_decline_after_a_decline_counts_as_a_change(oei, alice):
    family = family_in_state("declined", site=oei, by=alice)
    first = family.consent
    moment = timezone.now()

    services.family_record_decline(
        family=family,
        decided_on=days_ago(1),
        reason="too_burdensome",
        replaces=first,
        new_decision_reason="Asked again.",
        recorded_by=alice,
        token=uuid.uuid4(),
    )

    rows = api_as(alice).get(FAMILIES, {"modified_since": moment.isoformat()}).json()["results"]
    assert [row["study_id"] for row in rows] == [family.study_id]
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.DECLINED


def test_a_blinded_callers_modified_since_compares_days(oei, alice, carol):
    family = family_in_state("referred", site=oei, by=alice)
    later_today = timezone.localtime() + timedelta(seconds=1)

    rows = api_as(carol).get(FAMILIES, {"modified_since": later_today.isoformat()}).json()["results"]
    unblinded_rows = api_as(alice).get(FAMILIES, {"modified_since": later_today.isoformat()}).json()["results"]

    assert unblinded_rows == []
    if timezone.localdate(later_today) == timezone.localdate():  # (not a second before midnight)
        assert [row["study_id"] for row in rows] == [family.study_id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "asleep"}, "status"),
        ({"site": "XYZ"}, "site"),
        ({"site": "LAR"}, "site"),  # a site that is not the researcher's
        ({"modified_since": "yesterday"}, "modified_since"),
        ({"modified_since": "2026-05-01T10:00:00"}, "modified_since"),  # no offset
        ({"modified_since": "2026-05-01"}, "modified_since"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJhZnRlciI6IC0xfQ"}, "cursor"),  # {"after": -1}
    ],
)
def test_it_answers_a_bad_filter_with_a_field_error(oei, lar, alice, params, field):
    response = api_as(alice).get(FAMILIES, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_it_pages_with_a_cursor_in_a_stable_order(oei, alice):
    families = [family_in_state("referred", site=oei, by=alice) for _ in range(5)]
    api = api_as(alice)

    seen, url, pages = [], f"{FAMILIES}?page_size=2", 0
    while url:
        body = api.get(url.removeprefix("http://testserver")).json()
        seen += [row["study_id"] for row in body["results"]]
        url, pages = body["next"], pages + 1

    assert seen == [family.study_id for family in families]
    assert pages == 3


def _queries_for_the_list(api: Api) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(FAMILIES, {"page_size": 500})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("user", ["alice", "carol", "paula"])
def test_it_reads_a_page_in_the_same_number_of_queries_for_5_and_50_families(request, oei, alice, dina, user):
    api = api_as(request.getfixturevalue(user))
    allocation_list_for(oei, by=dina)
    for _ in range(2):
        randomised_family(oei, researcher=alice)
    for state in ("referred", "declined", "withdrawn"):
        family_in_state(state, site=oei, by=alice)
    api.get(FAMILIES)  # the token's first use writes its last use; later calls do not
    five = _queries_for_the_list(api)

    for i in range(45):
        family_in_state(("referred", "eligible", "consented", "declined", "withdrawn")[i % 5], site=oei, by=alice)
    fifty = _queries_for_the_list(api)

    assert fifty == five
    assert five <= 8


# --- Registering -------------------------------------------------------------------------------------------


def test_it_registers_a_family_and_returns_it_without_identifiers(oei, alice):
    api = api_as(alice, "write")

    response = api.post(FAMILIES, registration())

    assert response.status_code == 201, response.content
    body = response.json()
    family = Family.objects.get()
    assert body["study_id"] == family.study_id == "OEI-001"
    assert response["Location"] == f"{FAMILIES}OEI-001/"
    assert body["status"] == "referred" and body["referral_source"] == "health_service"
    assert "identifiers" not in body and "Nordmann" not in response.content.decode()
    assert family.identity.contact_name == "Ola Nordmann"
    assert family.identity.phone == "912 34 567"
    assert list(family.parents.values_list("birth_year", flat=True)) == [1988]
    event = AuditEvent.objects.get(kind=EventKind.API_CALL)
    assert event.subject == "OEI-001"


def test_the_same_submission_id_registers_one_family(oei, alice):
    api = api_as(alice, "write")
    body = registration(submission_id=str(uuid.uuid4()))

    first, again = api.post(FAMILIES, body), api.post(FAMILIES, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert Family.objects.count() == 1


def test_a_submission_id_of_another_sites_registration_finds_nothing(oei, lar, alice):
    alice.trial_sites.add(lar)
    api = api_as(alice, "write")
    submission = str(uuid.uuid4())
    assert api.post(FAMILIES, registration("LAR", submission_id=submission)).status_code == 201

    response = api.post(FAMILIES, registration("OEI", submission_id=submission))

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["submission_id"]
    assert Family.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"parent_birth_years": []}, ["parent_birth_years"]),
        ({"parent_birth_years": [1850]}, ["parent_birth_years"]),
        ({"parent_birth_years": [1990] * 5}, ["parent_birth_years"]),
        ({"child_birth_dates": []}, ["child_birth_dates"]),
        ({"child_birth_dates": [(timezone.localdate() + timedelta(days=2)).isoformat()]}, ["child_birth_dates"]),
        ({"referral_date": (timezone.localdate() + timedelta(days=1)).isoformat()}, ["referral_date"]),
        ({"referral_date": "1999-12-31"}, ["referral_date"]),
        ({"referral_source": "neighbour"}, ["referral_source"]),
        ({"site": "XYZ"}, ["site"]),
        ({"identifiers": {"contact_name": ""}}, ["identifiers.contact_name"]),
        (
            {"identifiers": {"contact_name": "Ola", "national_id_number": "12345678901"}},
            ["identifiers.national_id_number"],
        ),
        ({"identifiers": {"contact_name": "Ola", "phone": "12"}}, ["identifiers.phone"]),
        ({"identifiers": {"contact_name": "O" * 201}}, ["identifiers.contact_name"]),
        ({"submission_id": "not-a-uuid"}, ["submission_id"]),
    ],
)
def test_it_refuses_what_the_registration_form_refuses(oei, alice, changes, fields):
    response = api_as(alice, "write").post(FAMILIES, registration(**changes))

    assert response.status_code == 400, response.content
    assert [error["field"] for error in response.json()["errors"]] == fields
    assert not Family.objects.exists()


def test_it_refuses_a_site_that_is_not_recruiting_with_a_conflict(oei, alice):
    oei.recruitment_state = RecruitmentState.PAUSED
    oei.save()

    response = api_as(alice, "write").post(FAMILIES, registration())

    assert response.status_code == 409
    assert response.json()["type"] == "urn:family-partner:problem:site-not-recruiting"
    assert "is not recruiting" in response.json()["detail"]
    assert not Family.objects.exists()


def test_it_refuses_registration_at_another_researchers_site_and_to_read_only_tokens(oei, lar, alice, bob, carol):
    assert api_as(bob, "write").post(FAMILIES, registration("OEI")).status_code == 403
    assert api_as(alice).post(FAMILIES, registration()).status_code == 403
    assert api_as(carol, "write").post(FAMILIES, registration()).status_code == 403
    assert not Family.objects.exists()


def test_it_speaks_norwegian_when_asked(oei, alice):
    api = api_as(alice, "write", language="nb")

    response = api.post(FAMILIES, registration(parent_birth_years=[]))

    assert response.status_code == 400
    # (The problem's own detail is the foundation's string, translated when the lead merges its fragment.)
    assert response.json()["errors"] == [{"field": "parent_birth_years", "detail": "Legg til minst én forelder."}]


# Bodies of any shape: whatever comes in, the answer is never a 500, and nothing is written unless it succeeded.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
fuzzed_registration = st.fixed_dictionaries(
    {},
    optional={
        "site": st.sampled_from(["OEI", "LAR", "", "oei"]) | json_values,
        "referral_date": st.sampled_from([days_ago(3).isoformat(), "2026-02-30", ""]) | json_values,
        "referral_source": st.sampled_from(["health_service", "x"]) | json_values,
        "parent_birth_years": st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=6) | json_values,
        "child_birth_dates": st.lists(st.dates().map(str), max_size=4) | json_values,
        "identifiers": st.fixed_dictionaries({"contact_name": st.text(max_size=30)}) | json_values,
        "submission_id": st.uuids().map(str) | json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=fuzzed_registration)
def test_no_registration_body_gives_a_500_or_half_a_family(oei, lar, alice, body):
    api = Api(key_for(alice, "write"))
    before = Family.objects.count()

    response = api.client.post(FAMILIES, json.dumps(body), content_type="application/json", **api.headers)

    assert response.status_code in (200, 201, 400, 403, 409), response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert Family.objects.count() == before
    for family in Family.objects.all():
        assert family.parents.exists() and family.children.exists() and family.identity.contact_name


# --- Screening ---------------------------------------------------------------------------------------------


def test_it_screens_a_family_and_a_retry_gets_the_same_screening(oei, alice):
    family = family_in_state("referred", site=oei, by=alice)
    api = api_as(alice, "write")
    body = screening(submission_id=str(uuid.uuid4()))

    first = api.post(f"{family_url(family)}screenings/", body)
    again = api.post(f"{family_url(family)}screenings/", body)

    assert first.status_code == 201, first.content
    assert first.json() == {
        "study_id": family.study_id,
        "status": "eligible",
        "screened_on": days_ago(1).isoformat(),
        "eligible": True,
        "failed_criteria": [],
    }
    assert again.status_code == 200 and again.json() == first.json()
    assert Screening.objects.count() == 1


def test_it_asks_for_the_reason_of_a_second_screening_and_says_what_failed(oei, alice):
    family = family_in_state("eligible", site=oei, by=alice)
    api = api_as(alice, "write")
    url = f"{family_url(family)}screenings/"

    refused = api.post(url, screening(harmful_circumstances=False))
    again = api.post(url, screening(harmful_circumstances=False, rescreening_reason="New information."))

    assert refused.status_code == 400
    assert [error["field"] for error in refused.json()["errors"]] == ["rescreening_reason"]
    assert again.status_code == 201
    assert again.json()["eligible"] is False
    assert again.json()["failed_criteria"] == ["harmful_circumstances"]
    assert again.json()["status"] == "ineligible"
    assert "New information" not in again.content.decode()


def test_it_refuses_to_screen_a_consented_family_with_a_conflict(oei, alice):
    family = family_in_state("consented", site=oei, by=alice)

    response = api_as(alice, "write").post(f"{family_url(family)}screenings/", screening(rescreening_reason="Why"))

    assert response.status_code == 409
    assert "can no longer be screened" in response.json()["detail"]


def test_only_the_sites_researchers_screen(oei, lar, alice, bob, carol):
    family = family_in_state("referred", site=oei, by=alice)
    url = f"{family_url(family)}screenings/"

    assert api_as(bob, "write").post(url, screening()).status_code == 404
    assert api_as(carol, "write").post(url, screening()).status_code == 403
    assert api_as(alice).post(url, screening()).status_code == 403  # a read-only token
    bad = api_as(alice, "write").post(url, screening(screened_on="soon", struggle_areas=["weather"]))
    assert bad.status_code == 400
    assert sorted(error["field"] for error in bad.json()["errors"]) == ["screened_on", "struggle_areas.0"]
    assert not Screening.objects.exists()


# --- Races (PostgreSQL) ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_five_simultaneous_registrations_with_one_submission_id_make_one_family(transactional_db, postgres, oei, alice):
    apis = [api_as(alice, "write") for _ in range(5)]
    body = registration(submission_id=str(uuid.uuid4()))

    responses, errors = run_together(5, lambda i: apis[i].post(FAMILIES, body))

    assert errors == [None] * 5
    assert {response.status_code for response in responses} <= {200, 201}
    assert {response.json()["study_id"] for response in responses} == {"OEI-001"}
    assert Family.objects.count() == 1


def test_it_reads_an_unencoded_offset_and_a_nul_in_the_path_finds_nothing(oei, alice):
    family = family_in_state("referred", site=oei, by=alice)
    api = api_as(alice)
    yesterday = (timezone.localtime() - timedelta(days=1)).replace(microsecond=0)

    # curl sends "+02:00" as it is, which a query string reads as " 02:00".
    response = api.client.get(f"{FAMILIES}?modified_since={yesterday.strftime('%Y-%m-%dT%H:%M:%S%z')}", **api.headers)

    assert response.status_code == 200, response.content
    assert [row["study_id"] for row in response.json()["results"]] == [family.study_id]
    assert api.get(f"{FAMILIES}OEI%00001/").status_code == 404
    assert api_as(alice, "write").post(f"{FAMILIES}OEI%00001/screenings/", screening()).status_code == 404


@pytest.mark.parametrize("name", ["site", "status", "modified_since", "page_size", "cursor"])
def test_an_empty_filter_is_not_valid(oei, alice, name):
    response = api_as(alice).get(FAMILIES, {name: ""})

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [name]


def test_a_misspelt_filter_is_refused_rather_than_ignored(oei, alice):
    response = api_as(alice).get(FAMILIES, {"modifed_since": "2026-05-01T00:00:00Z"})

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "modifed_since", "detail": "This parameter is not known."}]
