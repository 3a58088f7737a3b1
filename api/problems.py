"""Every error of the API is a problem detail (RFC 9457), `application/problem+json`, translated by Accept-Language:

    {"type": "urn:family-partner:problem:list-used-up", "title": "Conflict", "status": 409,
     "detail": "OEI's allocation list is used up ...", "instance": "/api/v1/randomisations/",
     "errors": [{"field": "site", "detail": "..."}]}

`type` is `about:blank` for a plain HTTP error (its title is the status' phrase) and a `urn:family-partner:problem:`
name for the trial's own refusals. Field errors (bad input) are 400 with `errors`; a service's refusal that is not
about a field (the family is not consented, the list is used up) is 409 (docs/api.md, "Errors")."""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

PROBLEM_CONTENT_TYPE = "application/problem+json"
URN = "urn:family-partner:problem:"

# A service's ValidationError code (randomization.services `_Refused.reason`, ...) and the problem type it becomes.
TRIAL_PROBLEMS = {
    "used_up": "list-used-up",
    "stopped": "list-stopped",
    "unsealed": "list-unsealed",
    "damaged": "list-damaged",
    "no_list": "no-list",
    "not_ready": "not-ready",
    "wrong_site": "wrong-site",
    "not_consented": "not-consented",
    "not_recruiting": "site-not-recruiting",
}


def problem_body(status_code: int, detail: str, *, type_: str = "about:blank", instance: str = "", **extra) -> dict:
    body = {
        "type": type_,
        "title": str(HTTPStatus(status_code).phrase),
        "status": status_code,
        "detail": str(detail),
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem(status_code: int, detail: str, *, type_: str = "about:blank", instance: str = "", **extra) -> Response:
    body = problem_body(status_code, detail, type_=type_, instance=instance, **extra)
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def _field_errors(detail, prefix: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {field, detail}; `field` is a dotted path ("children.0.birth_date")
    and "" for an error of the whole request."""
    errors: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            errors += _field_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            errors += [{"field": prefix, "detail": str(item)} for item in detail]
        else:
            for index, item in enumerate(detail):
                errors += _field_errors(item, f"{prefix}.{index}" if prefix else str(index))
    else:
        errors.append({"field": prefix, "detail": str(detail)})
    return errors


@csrf_exempt  # no session and no form: a script's POST to a wrong address gets the 404, not the CSRF page
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any address under /api/ that names no operation (a study ID with a slash, a mistyped path): a 404 problem,
    as a script expects, rather than the pages' HTML 404 (api/urls.py routes the rest of /api/ here)."""
    body = problem_body(
        status.HTTP_404_NOT_FOUND, _("No such operation of the API; see /api/v1/docs/."), instance=request.path
    )
    return JsonResponse(body, status=status.HTTP_404_NOT_FOUND, content_type=PROBLEM_CONTENT_TYPE)


def from_django_validation_error(error: DjangoValidationError, instance: str) -> Response:
    """Field messages are bad input (400), unless one carries the code of a refusal by the trial's rules (the
    registration's site that does not recruit is named on the form's site field): that, like any message without a
    field, is a conflict with the trial's state (409)."""
    fielded = hasattr(error, "error_dict")
    items = [item for listed in error.error_dict.values() for item in listed] if fielded else error.error_list
    codes = {getattr(item, "code", None) for item in items}
    named = next((TRIAL_PROBLEMS[code] for code in codes if code in TRIAL_PROBLEMS), None)
    if fielded and named is None:
        errors = [
            {"field": "" if field == "__all__" else field, "detail": str(message)}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
        return problem(
            status.HTTP_400_BAD_REQUEST, _("The request has errors; see the list."), instance=instance, errors=errors
        )
    return problem(
        status.HTTP_409_CONFLICT,
        " ".join(str(message) for message in error.messages),
        type_=f"{URN}{named}" if named else f"{URN}refused",
        instance=instance,
    )


def exception_handler(exc, context) -> Response | None:
    """REST_FRAMEWORK's EXCEPTION_HANDLER: DRF's and Django's exceptions as problems; anything else is left to
    Django (a 500, logged), after the transaction of the request is rolled back."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    set_rollback()
    if isinstance(exc, DjangoValidationError):
        return from_django_validation_error(exc, instance)
    if isinstance(exc, Http404):
        return problem(status.HTTP_404_NOT_FOUND, _("Not found, or not yours to see."), instance=instance)
    if isinstance(exc, DjangoPermissionDenied):
        return problem(status.HTTP_403_FORBIDDEN, _("Your roles do not allow this."), instance=instance)
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        response = problem(
            status.HTTP_400_BAD_REQUEST,
            _("The request has errors; see the list."),
            instance=instance,
            errors=_field_errors(exc.detail),
        )
    else:
        detail = exc.detail if isinstance(exc.detail, str) else _("The request was refused.")
        response = problem(exc.status_code, detail, instance=instance)
    for name, value in headers.items():
        response[name] = value
    return response


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="A dotted path to the field, or empty for the whole request.")
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """For the schema only: what every error response holds."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False)
    errors = FieldErrorSerializer(many=True, required=False)  # type: ignore[assignment]  # a field named errors
