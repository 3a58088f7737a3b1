"""Structured logs: JSON lines in production (LOG_FORMAT=json), each record with the id of the request or Celery task
it belongs to, so that an operator can follow one request through the web log without the log naming anyone.

A request's id comes from the reverse proxy's X-Request-ID header when it looks like an id (hex digits and dashes, a
UUID), otherwise it is a new UUID; it is returned as the response's X-Request-ID. Anything else in the header (text a
client chose) is never logged. This module imports nothing of Django's at module level: Gunicorn's logger uses it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id (nginx's $request_id is 32 hex digits, a UUID has dashes); nothing a client could smuggle text in.
_ACCEPTED_ID = re.compile(r"[0-9A-Fa-f][0-9A-Fa-f-]{0,63}")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


def log_format() -> str:
    """json or plain: LOG_FORMAT, by default JSON in production and plain text in development and tests."""
    default = "json" if os.environ.get("TRIAL_ENV") == "production" else "plain"
    value = os.environ.get("LOG_FORMAT", default).strip().lower() or default
    if value not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {value!r}")
    return value


def accepted_request_id(header: str | None) -> str:
    """The proxy's request id when it looks like one, else a new one."""
    if header and _ACCEPTED_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds request_id (or task_id, in a Celery task) to every record that passes the handler it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in (("request_id", request_id), ("task_id", task_id)):
            value = variable.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class TrialJsonFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, and the record's request_id or task_id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)


def json_formatter() -> logging.Formatter:
    return TrialJsonFormatter()


class RequestIdMiddleware:
    """Gives each request its id (the proxy's, or a new one) for the logs, and returns it as X-Request-ID. First in
    MIDDLEWARE, so that every later middleware's log lines and every response carry it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        value = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        token = request_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[REQUEST_ID_HEADER] = value
        return response
