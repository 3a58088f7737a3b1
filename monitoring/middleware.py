"""Counts and times every request by the name of the view that answered it (never its path: paths hold study IDs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from monitoring.metrics import request_observed

logger = logging.getLogger(__name__)


def view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or "unnamed"
    # Answered before URL resolution: WhiteNoise's static files, or a refusal (a redirect to HTTPS, a bad host).
    if settings.STATIC_URL and request.path.startswith(str(settings.STATIC_URL)):
        return "static"
    return "unresolved"


class RequestMetrics:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            request_observed(
                view=view_label(request),
                method=request.method or "",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
        except OSError:
            # The multiprocess files live on the var volume: a full disk must cost a data point, never the user's
            # request (tests/stack/test_service_faults.py fills that disk).
            logger.warning("Could not record the request's metrics", exc_info=True)
        return response
