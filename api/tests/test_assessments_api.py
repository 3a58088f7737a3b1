"""Follow-up assessments through the API: who reads a family's schedule and who records (the pages' rules), the
page's checks and messages, the one-time submission id, the service's refusals as 409, the audit trail with the
token's name, and never an arm, a guess or free text for anyone (assessors are blinded)."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.tests.helpers import Api, api_as, key_for
from families import services as family_services
from families.tests.factories import days_ago, family_in_state
from followups.models import Assessment, BlindingGuess
from randomization.tests.factories import allocation_list_for, randomised_family
from tests.test_blinding import arm_traces
from trial.models import AuditEvent, EventKind
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits.tests.factories import days_back

FREE_TEXT = "PLANTED only the SDQ, the father did not want the visits"


def schedule_url(study_id: str) -> str:
    return f"/api/v1/families/{study_id}/assessments/"


def record_url(study_id: str, months: int) -> str:
    return f"/api/v1/families/{study_id}/assessments/{months}/"


@pytest.fixture
def listed(oei, dina):
    return allocation_list_for(oei, by=dina, length=200)


@pytest.fixture
def family(listed, oei, alice):
    """Randomised 120 days ago: its 3-month window is open or just past."""
    with days_back(120):
        return randomised_family(oei, researcher=alice).family


@pytest.fixture
def consented(oei, alice):
    """Consented today: its baseline is open."""
    return family_in_state("consented", site=oei, by=alice)


def three_months(family, **overrides) -> dict:
    assessment = Assessment.objects.get(family=family, months=3)
    body = {
        "status": "completed",
        "done_on": assessment.target_on.isoformat(),
        "mode": "phone",
        "questionnaires": ["SDQ"],
        "arm_guess": "unsure",
    }
    return {**body, **overrides}


# --- Reading the schedule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["carol", "alice", "paula"])
def test_the_sites_assessors_researchers_and_the_pi_read_the_schedule(request, who, family):
    response = api_as(request.getfixturevalue(who)).get(schedule_url(family.study_id))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["study_id"] == family.study_id and body["site"] == "OEI"
    assert [row["months"] for row in body["assessments"]] == [0, 3, 6, 12, 18]
    baseline = body["assessments"][0]
    assert (baseline["label"], baseline["outcome"], baseline["state"]) == ("baseline", "completed", "completed")
    assert baseline["done_on"] and baseline["recorded_on"] and baseline["mode"] == "home_visit"
    assert body["may_record"] is (who == "carol")


@pytest.mark.parametrize("who", ["bob", "dina", "frank"])
def test_anyone_else_gets_404_as_on_the_pages(request, who, family):
    user = request.getfixturevalue(who)
    response = Api(key_for(user)).get(schedule_url(family.study_id))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_an_unknown_family_is_404(carol, db):
    assert api_as(carol).get(schedule_url("OEI-999")).status_code == 404


def test_the_schedule_holds_no_arm_no_guess_and_no_free_text(carol, family):
    assessment = Assessment.objects.get(family=family, months=3)
    api = api_as(carol, "write")
    body = three_months(family, status="partly", details=FREE_TEXT, arm_guess="partner")
    assert api.post(record_url(family.study_id, 3), body).status_code == 201
    assert BlindingGuess.objects.get(assessment=assessment).guess == "intervention"
    text = api.get(schedule_url(family.study_id)).content.decode()
    assert arm_traces(text) == []
    assert FREE_TEXT not in text and "guess" not in text and "partner" not in text


def test_the_schedule_is_in_the_callers_language(carol, family):
    body = api_as(carol, language="nb").get(schedule_url(family.study_id)).json()
    assert body["assessments"][0]["label"] != "baseline" and body["assessments"][1]["label"] != "3 months"


# --- Recording -----------------------------------------------------------------------------------------------


def test_an_assessor_records_an_assessment(carol, family):
    api = api_as(carol, "write")
    response = api.post(record_url(family.study_id, 3), three_months(family))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["months"], body["outcome"], body["state"], body["mode"]) == (3, "completed", "completed", "phone")
    assert body["outside_window"] is False and body["questionnaires"] == ["SDQ"]
    assessment = Assessment.objects.get(family=family, months=3)
    assert assessment.status == "completed" and assessment.recorded_by == carol
    assert arm_traces(response.content.decode()) == []


def test_the_same_submission_id_again_returns_the_record_once(carol, family):
    api = api_as(carol, "write")
    body = three_months(family, submission_id=str(uuid.uuid4()))
    first = api.post(record_url(family.study_id, 3), body)
    again = api.post(record_url(family.study_id, 3), body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assessment = Assessment.objects.get(family=family, months=3)
    assert assessment.history.filter(status="completed").count() == 1


def test_a_second_submission_without_a_reason_is_a_correction_that_needs_one(carol, family):
    api = api_as(carol, "write")
    assert api.post(record_url(family.study_id, 3), three_months(family)).status_code == 201
    response = api.post(record_url(family.study_id, 3), three_months(family, mode="home_visit"))
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["correction_reason"]
    corrected = api.post(
        record_url(family.study_id, 3), three_months(family, mode="home_visit", correction_reason="Wrong mode")
    )
    assert corrected.status_code == 201 and corrected.json()["mode"] == "home_visit"


def test_the_pages_checks_give_field_errors(carol, family):
    api = api_as(carol, "write")
    response = api.post(record_url(family.study_id, 3), three_months(family, arm_guess="", questionnaires=[]))
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"arm_guess", "questionnaires"}
    unknown = api.post(record_url(family.study_id, 3), three_months(family, questionnaires=["NOT-ONE"]))
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "questionnaires"
    assert Assessment.objects.get(family=family, months=3).status == "scheduled"


def test_a_date_outside_the_window_needs_a_confirmation(carol, consented, listed, alice, oei):
    with days_back(30):
        family = randomised_family(oei, researcher=alice).family
    api = api_as(carol, "write")
    body = three_months(family, done_on=days_ago(1).isoformat())
    refused = api.post(record_url(family.study_id, 3), body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "confirm_outside_window"
    confirmed = api.post(record_url(family.study_id, 3), {**body, "confirm_outside_window": True})
    assert confirmed.status_code == 201 and confirmed.json()["outside_window"] is True


def test_a_baseline_asks_no_guess(carol, consented):
    body = {"status": "completed", "done_on": days_ago(0).isoformat(), "mode": "home_visit", "questionnaires": ["SDQ"]}
    response = api_as(carol, "write").post(record_url(consented.study_id, 0), body)
    assert response.status_code == 201, response.content
    assert response.json()["label"] == "baseline"


def test_a_missed_assessment_needs_its_reason(carol, consented):
    api = api_as(carol, "write")
    body = {"status": "missed", "done_on": days_ago(0).isoformat()}
    response = api.post(record_url(consented.study_id, 0), body)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "reason"
    assert api.post(record_url(consented.study_id, 0), {**body, "reason": "not_reached"}).status_code == 201


def test_a_stopped_assessment_is_a_409(carol, consented, alice):
    family_services.family_withdraw(
        family=consented,
        withdrawn_on=days_ago(0),
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    body = {"status": "completed", "done_on": days_ago(0).isoformat(), "mode": "phone", "questionnaires": ["SDQ"]}
    response = api_as(carol, "write").post(record_url(consented.study_id, 0), body)
    assert response.status_code == 409
    assert response.json()["type"].startswith("urn:family-partner:problem:")
    assert "stopped" in response.json()["detail"]


def test_an_unknown_time_point_is_404(carol, family):
    assert api_as(carol, "write").post(record_url(family.study_id, 7), three_months(family)).status_code == 404


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("paula", 403), ("bob", 404), ("dina", 403)])
def test_only_the_sites_assessors_record(request, who, status, family):
    user = request.getfixturevalue(who)
    scopes = ["write"] if who in ("alice", "bob") else []
    response = Api(key_for(user, *scopes)).post(record_url(family.study_id, 3), three_months(family))
    assert response.status_code == status
    assert Assessment.objects.get(family=family, months=3).status == "scheduled"


def test_an_assessor_of_another_site_gets_404(lar, family):
    other = UserFactory(username="lena", roles=[Role.OUTCOME_ASSESSOR], sites=[lar])
    assert api_as(other, "write").post(record_url(family.study_id, 3), three_months(family)).status_code == 404


def test_a_read_only_token_cannot_record(carol, family):
    response = api_as(carol).post(record_url(family.study_id, 3), three_months(family))
    assert response.status_code == 403
    assert "write" in response.json()["detail"]


def test_the_call_is_in_the_audit_trail_with_the_tokens_name(carol, family):
    key = key_for(carol, "write")
    assert Api(key).post(record_url(family.study_id, 3), three_months(family)).status_code == 201
    event = AuditEvent.objects.get(kind=EventKind.API_CALL)
    assert event.user == carol and event.subject == family.study_id and event.site == family.site
    assert event.details["operation"] == "family-assessment" and event.details["status"] == 201
    assert event.details["token"].startswith("test token")


def test_errors_are_in_norwegian_when_asked(carol, family):
    api = api_as(carol, "write", language="nb")
    response = api.post(record_url(family.study_id, 3), three_months(family, arm_guess=""))
    assert response.status_code == 400
    detail = response.json()["errors"][0]["detail"]
    assert "arm" in detail.lower() and "Answer which arm" not in detail


# --- Hostile input -------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "status",
    "done_on",
    "mode",
    "questionnaires",
    "reason",
    "details",
    "arm_guess",
    "confirm_outside_window",
    "correction_reason",
    "submission_id",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES | st.just("\x00"), max_size=6) | JSON_VALUES)
def test_any_body_is_answered_without_a_500(carol, family, body):
    api = api_as(carol, "write")
    response = api.client.post(
        record_url(family.study_id, 3), json.dumps(body), content_type="application/json", **api.headers
    )
    assert response.status_code in (200, 201, 400, 409), response.content
    assert response["Content-Type"] in ("application/json", "application/problem+json")
