"""Structured logs: each request has an id (the proxy's when it is one, else a new one), returned as X-Request-ID
and added to every log line of the request; JSON lines in production."""

import json
import logging
import re

import pytest

from trial.logs import RequestIdFilter, json_formatter, log_format, request_id, task_id


def test_it_gives_each_request_a_new_id(client, db):
    first = client.get("/accounts/login/")["X-Request-ID"]
    second = client.get("/accounts/login/")["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize("given", ["0f8e7d6c5b4a39281706f5e4d3c2b1a0", "123e4567-e89b-12d3-a456-426614174000"])
def test_it_keeps_the_proxys_id(client, db, given):
    assert client.get("/accounts/login/", HTTP_X_REQUEST_ID=given)["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["Ola Nordmann", "abc def", "a" * 65, "deadbeef\nforged line", "", "g00d"])
def test_it_replaces_what_is_not_an_id(client, db, given):
    answered = client.get("/accounts/login/", HTTP_X_REQUEST_ID=given)["X-Request-ID"]

    assert answered != given
    assert re.fullmatch(r"[0-9a-f]{32}", answered)


def test_a_redirect_carries_the_id_too(client, db):
    response = client.get("/families/")

    assert response.status_code == 302
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def record(message: str = "something happened") -> logging.LogRecord:
    return logging.LogRecord("trial.test", logging.INFO, __file__, 1, message, (), None)


def test_a_log_line_in_a_request_or_task_carries_its_id():
    outside = record()
    RequestIdFilter().filter(outside)
    token = request_id.set("abc123")
    try:
        inside = record()
        RequestIdFilter().filter(inside)
    finally:
        request_id.reset(token)
    task_token = task_id.set("d1e2f3")
    try:
        in_task = record()
        RequestIdFilter().filter(in_task)
    finally:
        task_id.reset(task_token)

    assert not hasattr(outside, "request_id")
    assert inside.request_id == "abc123"  # type: ignore[attr-defined]
    assert in_task.task_id == "d1e2f3"  # type: ignore[attr-defined]


def test_a_json_line_is_one_object_with_level_logger_message_and_id():
    line = record("the sweep found 3 messages")
    line.request_id = "abc123"

    parsed = json.loads(json_formatter().format(line))

    assert parsed["level"] == "INFO"
    assert parsed["logger"] == "trial.test"
    assert parsed["message"] == "the sweep found 3 messages"
    assert parsed["request_id"] == "abc123"
    assert "timestamp" in parsed
    assert "\n" not in json_formatter().format(record("two\nlines"))


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"TRIAL_ENV": "production"}, "json"),
        ({"TRIAL_ENV": "development"}, "plain"),
        ({"LOG_FORMAT": "plain"}, "plain"),
    ],
)
def test_production_logs_json_by_default(monkeypatch, environment, expected):
    monkeypatch.setenv("TRIAL_ENV", "production")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert log_format() == expected
