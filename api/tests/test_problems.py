"""Every error of the API is a problem detail (RFC 9457): the handler's translations of DRF's and Django's errors."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import translation
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from api.problems import PROBLEM_CONTENT_TYPE, URN, _field_errors, exception_handler


def handle(exc):
    request = APIRequestFactory().post("/api/v1/randomisations/")
    return exception_handler(exc, {"request": request})


def test_it_flattens_nested_field_errors_into_dotted_paths():
    detail = {
        "site": ["Unknown site."],
        "household": {"children": [{}, {"birth_date": ["Not a date."]}]},
        "non_field_errors": ["Give either a or b."],
    }
    assert _field_errors(detail) == [
        {"field": "site", "detail": "Unknown site."},
        {"field": "household.children.1.birth_date", "detail": "Not a date."},
        {"field": "", "detail": "Give either a or b."},
    ]


def test_it_answers_bad_input_with_400_and_the_fields():
    response = handle(exceptions.ValidationError({"study_id": ["This field is required."]}))
    assert response.status_code == 400
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert response.data["type"] == "about:blank"
    assert response.data["title"] == "Bad Request"
    assert response.data["instance"] == "/api/v1/randomisations/"
    assert response.data["errors"] == [{"field": "study_id", "detail": "This field is required."}]


def test_it_answers_a_services_field_errors_with_400():
    response = handle(ValidationError({"referral_date": ["Not in the future."], "__all__": ["Check the household."]}))
    assert response.status_code == 400
    assert {"field": "referral_date", "detail": "Not in the future."} in response.data["errors"]
    assert {"field": "", "detail": "Check the household."} in response.data["errors"]


@pytest.mark.parametrize(
    ("code", "problem_type"),
    [("used_up", "list-used-up"), ("stopped", "list-stopped"), ("not_ready", "not-ready"), (None, "refused")],
)
def test_it_answers_a_services_refusal_with_409_and_a_problem_type_for_its_reason(code, problem_type):
    response = handle(ValidationError("The allocation list of OEI is used up.", code=code))
    assert response.status_code == 409
    assert response.data["type"] == URN + problem_type
    assert response.data["detail"] == "The allocation list of OEI is used up."


def test_it_answers_not_found_and_forbidden_without_saying_more():
    assert handle(Http404("OEI-007 is at another site")).data["detail"] == "Not found, or not yours to see."
    assert handle(PermissionDenied()).status_code == 403


def test_it_keeps_the_authentication_challenge_and_the_wait():
    unauthorised = handle(exceptions.NotAuthenticated())
    assert unauthorised.status_code == 401
    throttled = handle(exceptions.Throttled(wait=42))
    assert throttled.status_code == 429
    assert throttled["Retry-After"] == "42"


def test_it_leaves_an_unexpected_error_to_django():
    assert handle(ZeroDivisionError()) is None


def test_it_speaks_norwegian_when_asked():
    with translation.override("nb"):
        response = handle(exceptions.ValidationError({"site": ["x"]}))
    assert response.data["detail"] == "Forespørselen har feil; se listen."


def test_it_answers_a_refusal_named_on_a_field_as_a_conflict():
    refused = ValidationError({"site": [ValidationError("Øvre Eiker is paused.", code="not_recruiting")]})
    response = handle(refused)
    assert response.status_code == 409
    assert response.data["type"] == URN + "site-not-recruiting"
    assert response.data["detail"] == "Øvre Eiker is paused."
