"""Schemathesis against the live schema: every operation of the API, with data that fits the schema (positive) and
data that does not (negative), sent in-process to the WSGI application with a real token.

Checks: no 500 (not_a_server_error), every response as the schema says (status code, content type, the body's
schema: no undeclared field, no undeclared null), bad input refused (negative_data_rejection: a 4xx). Each operation
is called by a user who may use it (a researcher for families and randomisation, an assessor of the family's site
for assessments, the data manager for datasets and the audit log), against a trial seeded so that the operation
reaches its success path too: families in every state at the caller's site, OEI's allocation list, a randomised
family, an audit trail. Besides the generated calls, one known-good call per operation is checked the same way, so
a success response is always checked against the schema, whatever the draw.

The run is reproducible (derandomize) and bounded (EXAMPLES per operation and mode): about two minutes on CI's two
cores. .ci/run fails if this test did not run (it looks for its test id in the JUnit report).
"""

import json
import uuid
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api.tests.helpers import key_for
from families.tests.factories import days_ago, family_in_state, register_family
from randomization import lists
from randomization import services as randomisation
from randomization.tests.factories import ready_to_randomise

# Examples per operation and generation mode (positive, negative), on top of the one known-good call.
EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The operations a script calls as an assessor of the family's site, and as the data manager (by operationId's
# path: the schema's own paths).
ASSESSOR_PATHS = ("/api/v1/families/{study_id}/assessments/{months}/",)
EXPORT_PREFIXES = ("/api/v1/datasets/", "/api/v1/audit-log/")


@pytest.fixture
def seeded(db, oei, lar, alice, bob, carol, dina, paula):
    """A trial at OEI with families in every state, the allocation lists, randomised families, and their audit trail:
    what the operations need to reach their success paths."""
    lists.allocation_list_generate(site=oei, generated_by=dina)
    lists.allocation_list_generate(site=lar, generated_by=dina)
    families = {
        state: family_in_state(state, site=oei, by=alice)
        for state in ("referred", "eligible", "ineligible", "consented", "declined", "withdrawn")
    }
    families["ready"] = ready_to_randomise(oei, by=alice)
    randomised = ready_to_randomise(oei, by=alice)
    randomisation.family_randomise(family=randomised, confirmed_site=oei, randomised_by=alice)
    families["randomised"] = randomised
    families["other site"] = register_family(site=lar, by=bob)
    return families


def users_and_keys(alice, carol, dina) -> dict[str, str]:
    return {
        "researcher": key_for(alice, "write", "randomise"),
        "assessor": key_for(carol, "write"),
        "data manager": key_for(dina, "export"),
    }


def caller_of(path: str) -> str:
    if path in ASSESSOR_PATHS:
        return "assessor"
    if path.startswith(EXPORT_PREFIXES):
        return "data manager"
    return "researcher"


def live_schema(key: str) -> dict:
    from django.test import Client

    response = Client().get(reverse("api:schema"), {"format": "json"}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    return json.loads(response.content)


def known_good(path: str, method: str, families: dict) -> dict:
    """One call of each operation that must succeed: its path parameters and body."""
    ready, randomised = families["ready"], families["randomised"]
    if path == "/api/v1/families/" and method == "post":
        return {
            "body": {
                "site": "OEI",
                "referral_date": days_ago(2).isoformat(),
                "referral_source": "health_service",
                "parent_birth_years": [1988],
                "child_birth_dates": [days_ago(365 * 4).isoformat()],
                "identifiers": {"contact_name": "Kari Nordmann", "national_id_number": "", "phone": "", "address": ""},
                "submission_id": str(uuid.uuid4()),
            }
        }
    if path == "/api/v1/randomisations/":
        return {"body": {"study_id": ready.study_id, "site": "OEI"}}
    if path.endswith("/screenings/"):
        return {
            "path_parameters": {"study_id": families["referred"].study_id},
            "body": {
                "screened_on": days_ago(1).isoformat(),
                "involved_with_child_welfare": True,
                "harmful_circumstances": True,
                "struggle_areas": ["finances", "housing"],
                "submission_id": str(uuid.uuid4()),
            },
        }
    if path in ASSESSOR_PATHS:
        return {
            "path_parameters": {"study_id": randomised.study_id, "months": 3},
            "body": {
                "status": "completed",
                "done_on": days_ago(0).isoformat(),
                "mode": "phone",
                "questionnaires": ["SDQ"],
                "arm_guess": "unsure",
                "confirm_outside_window": True,
                "submission_id": str(uuid.uuid4()),
            },
        }
    parameters = {}
    if "{study_id}" in path:
        parameters["study_id"] = randomised.study_id
    if "{key}" in path:
        parameters["key"] = "families"
    return {"path_parameters": parameters} if parameters else {}


@contextmanager
def wsgi_app():
    """Django's WSGI application, called in the test's thread: like the test client, it must not close the test's
    database connection (in its transaction) at the end of each request. (The test client connects these signals
    again after each of its own requests: no test client call inside.)"""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_failure_in_any_operation(seeded, alice, carol, dina, settings):
    # Hundreds of calls a minute with one token: the throttle's 429 would answer most of them.
    settings.API_RATE = settings.API_WRITE_RATE = "100000/min"
    keys = users_and_keys(alice, carol, dina)
    schema = schemathesis.openapi.from_dict(live_schema(keys["researcher"]))
    with wsgi_app() as app:
        failures, calls, operations = fuzz(schema, app, keys, seeded)
    print(f"schemathesis: {len(operations)} operations, {calls}")
    assert not failures, "schemathesis found:\n\n" + "\n\n".join(failures)


def described(exc: BaseException) -> str:
    """A failure as schemathesis tells it (with the curl line to reproduce it), each check's failure of a group."""
    inner = [exc, *getattr(exc, "exceptions", ())]
    return "\n".join(f"{type(one).__name__}: {str(one)[:1500]}" for one in inner)


def examples(strategy, *, app, headers: dict, checks: list, calls: dict):
    """EXAMPLES cases drawn from `strategy`, each sent with the caller's token and its response checked."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        case.headers = {**(case.headers or {}), **headers}
        calls["generated"] += 1
        case.call_and_validate(app=app, checks=checks)

    return run


def fuzz(schema, app, keys: dict[str, str], seeded: dict) -> tuple[list[str], dict[str, int], list]:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema lists the API's operations"
    failures: list[str] = []
    calls = {"known good": 0, "generated": 0}
    study_ids = st.sampled_from([family.study_id for family in seeded.values()] + ["OEI-999", "LAR-001"])

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        headers = {"Authorization": f"Bearer {keys[caller_of(operation.path)]}"}

        good = operation.Case(headers=headers, **known_good(operation.path, operation.method, seeded))
        try:
            response = good.call_and_validate(app=app, checks=CHECKS)
            calls["known good"] += 1
            if not 200 <= response.status_code < 300:
                failures.append(f"{label} (known-good call): {response.status_code} {response.text[:300]}")
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{label} (known-good call): {described(exc)}")

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            if "{study_id}" in operation.path and mode == GenerationMode.POSITIVE:
                # Half the draws name a family that exists (in every state, at both sites), to pass the lookup.
                strategies.append(
                    study_ids.flatmap(
                        lambda study_id, operation=operation, mode=mode: operation.as_strategy(
                            generation_mode=mode, path_parameters={"study_id": study_id}
                        )
                    )
                )
            checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

            run = examples(st.one_of(strategies), app=app, headers=headers, checks=checks, calls=calls)
            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # the checks' failures, after Hypothesis shrank them
                failures.append(f"{label} ({mode.value}): {described(exc)}")

    return failures, calls, operations


def test_schemathesis_sees_every_operation_of_the_schema(db, alice):
    """The fuzzing above walks every operation the schema lists (none is filtered out by a method or a tag)."""
    schema = schemathesis.openapi.from_dict(live_schema(key_for(alice)))
    walked = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}
    listed = {
        (method.upper(), path)
        for path, item in live_schema(key_for(alice))["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert walked == listed
    assert ("GET", "/api/v1/me/") in walked
