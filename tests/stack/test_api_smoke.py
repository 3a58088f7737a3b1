"""The API's smoke test against the trial running as in production (tests/stack/harness.py): tokens made with
`manage.py create_api_token` as an operator or CI makes them, then a script's calls over HTTPS: who am I, the
families, register and screen a family, randomise one, download a dataset, read the schema, and a bad token refused.
Every answer is JSON, or problem details (RFC 9457) for an error."""

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import requests
import yaml
from django.utils import timezone

from tests.stack.harness import ProductionStack
from tests.stack.trial_families import make_family

PROBLEM = "application/problem+json"


def token(stack: ProductionStack, username: str, *scopes: str) -> str:
    arguments = ["create_api_token", username, "--name", f"smoke {uuid.uuid4().hex[:8]}"]
    for scope in scopes:
        arguments += ["--scope", scope]
    key = stack.manage(*arguments).stdout.strip()
    assert key.startswith("fpt_"), key
    return key


def api(stack: ProductionStack, key: str) -> requests.Session:
    session = stack.client()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


def json_of(answer: requests.Response, status: int) -> dict:
    assert answer.status_code == status, f"{answer.status_code} {answer.text[:500]}"
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers["Content-Type"]
    return answer.json()


def test_a_script_works_through_the_api_of_the_production_stack(stack: ProductionStack):
    today = timezone.localdate()
    # Only this test's: a fault test before it may have left a 503 of its own in Gunicorn's log.
    errors_before = len(stack.server_errors())
    researcher = api(stack, token(stack, "researcher", "write", "randomise"))
    v1 = stack.url("/api/v1")

    me = json_of(researcher.get(f"{v1}/me/", timeout=30), 200)
    assert me["username"] == "researcher"

    listed = json_of(researcher.get(f"{v1}/families/", params={"site": "OEI"}, timeout=30), 200)
    assert listed["results"], "the demo's families at OEI"
    assert {family["site"] for family in listed["results"]} == {"OEI"}

    submission = str(uuid.uuid4())
    registration: dict[str, Any] = {
        "site": "OEI",
        "referral_date": (today - timedelta(days=3)).isoformat(),
        "referral_source": "health_service",
        "parent_birth_years": [1988],
        "child_birth_dates": [(today - timedelta(days=365 * 4)).isoformat()],
        "identifiers": {"contact_name": "Kari Nordmann", "phone": "912 34 567"},
        "submission_id": submission,
    }
    answer = researcher.post(f"{v1}/families/", json=registration, timeout=30)
    registered = json_of(answer, 201)
    study_id = registered["study_id"]
    assert answer.headers["Location"].endswith(f"/api/v1/families/{study_id}/")
    assert "identifiers" not in registered
    # A retry of the same submission is the same family, not a second one.
    assert json_of(researcher.post(f"{v1}/families/", json=registration, timeout=30), 200)["study_id"] == study_id

    screening: dict[str, Any] = {
        "screened_on": today.isoformat(),
        "involved_with_child_welfare": True,
        "harmful_circumstances": True,
        "struggle_areas": ["finances", "housing"],
        "submission_id": str(uuid.uuid4()),
    }
    screened = json_of(researcher.post(f"{v1}/families/{study_id}/screenings/", json=screening, timeout=30), 201)
    assert (screened["study_id"], screened["eligible"]) == (study_id, True)

    # Consent has no API operation: a family consented (and its baseline recorded) through the services.
    consented = make_family(stack, "consented")["study_id"]
    body = {"study_id": consented, "site": "OEI"}
    randomised = json_of(researcher.post(f"{v1}/randomisations/", json=body, timeout=30), 201)
    assert randomised["arm"] in {"intervention", "control"}
    again = json_of(researcher.post(f"{v1}/randomisations/", json=body, timeout=30), 200)
    assert (again["randomisation_id"], again["arm"]) == (randomised["randomisation_id"], randomised["arm"])
    assert stack.sql(
        "SELECT count(*) FROM randomization_allocation a JOIN families_family f ON f.id = a.family_id "
        "WHERE f.study_id = %s",
        (consented,),
    ) == [(1,)]

    analyst = api(stack, token(stack, "datamanager", "export"))
    dataset = analyst.get(f"{v1}/datasets/families/", params={"file_format": "csv"}, timeout=60)
    assert dataset.status_code == 200, dataset.text[:500]
    assert dataset.headers["Content-Type"].startswith("text/csv")
    assert ".csv" in dataset.headers["Content-Disposition"]
    rows = {row["study_id"]: row for row in csv.DictReader(io.StringIO(dataset.content.decode("utf-8-sig")))}
    assert study_id in rows and consented in rows
    assert rows[consented]["arm"] == randomised["arm"]

    schema = researcher.get(f"{v1}/schema/", timeout=60)
    assert schema.status_code == 200
    document = yaml.safe_load(schema.text)
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/me/", "/api/v1/families/", "/api/v1/randomisations/"} <= set(document["paths"])

    refused = stack.client().get(f"{v1}/me/", headers={"Authorization": "Bearer fpt_00000000_not-a-key"}, timeout=30)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith(PROBLEM)
    assert refused.json()["status"] == 401

    assert stack.server_errors()[errors_before:] == []
