"""What every API view shares: token authentication, the scope check, throttling, problem details, and the audit
trail of every call that changes or exports something (with the token's name)."""

from django.db import transaction
from rest_framework.views import APIView

from api.authentication import token_of
from api.models import Scope
from trial.events import record_event
from trial.models import EventKind, Site

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiView(APIView):
    # A view of the API. Set `required_scope` (default: read) and, for a GET that exports, `exports = True`. Give
    # each view its own docstring: it is the operation's description in the schema (not this comment's text).
    #
    # A call that changes or exports something is written to the audit trail (an `api_call` event: the operation,
    # method, status, the token's name and prefix), whatever its answer, once the view has answered; the view
    # sets `self.audit_subject` (a study ID) and `self.audit_site` when it knows them. A call refused before a user
    # is known (401) is not written: there is nobody to name.

    required_scope: str = Scope.READ
    exports: bool = False
    audit_subject: str = ""
    audit_site: Site | None = None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if (request.method not in SAFE_METHODS or self.exports) and request.user.is_authenticated:
            self._record_call(request, response.status_code)
        return response

    def _record_call(self, request, status_code: int) -> None:
        token = token_of(request)
        match = request.resolver_match
        # Outside the request's transaction (ATOMIC_REQUESTS is off; a refused call rolled its own back already).
        with transaction.atomic():
            record_event(
                kind=EventKind.API_CALL,
                user=request.user,
                site=self.audit_site,
                subject=self.audit_subject,
                operation=match.url_name if match else "",
                method=request.method,
                status=status_code,
                token=token.name if token else "",
                token_prefix=token.prefix if token else "",
            )
