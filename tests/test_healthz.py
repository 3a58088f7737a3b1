"""/healthz: what the container's health check and the reverse proxy ask before sending users in."""

import socket
import threading

import pytest
import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from conftest import require
from trial.celery import app as celery_app


def test_it_reports_healthy_to_an_anonymous_caller(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_it_is_never_cached(client, db):
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"]


def test_it_answers_503_when_the_broker_cannot_be_reached(client, db, monkeypatch):
    # Nothing listens on port 1: the connection is refused at once.
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["broker"] != "ok"
    assert response.json()["database"] == "ok"


def test_it_answers_503_when_the_database_cannot_be_reached(client, db, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    # Undone right after the request: the test database itself must still be reachable for teardown.
    with monkeypatch.context() as patch:
        patch.setattr(type(connections[DEFAULT_DB_ALIAS]), "cursor", refuse)
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"] == "error: OperationalError"
    assert response.json()["broker"] == "ok"


def test_it_does_not_reveal_connection_details_when_a_service_is_down(client, db, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://:hunter2@127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "hunter2" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_it_only_answers_get(client, db):
    response = client.post("/healthz")

    assert response.status_code == 405


@pytest.mark.redis
def test_it_checks_the_broker_by_talking_to_redis(client, db):
    require(bool(settings.REDIS_URL), "needs Redis (set REDIS_URL)")
    assert celery_app.conf.broker_url.startswith("redis://")
    server = redis.Redis.from_url(settings.REDIS_URL)
    connections_before = server.info("stats")["total_connections_received"]

    healthy = client.get("/healthz")

    assert healthy.status_code == 200
    assert healthy.json()["broker"] == "ok"
    assert server.info("stats")["total_connections_received"] > connections_before


class SilentServer:
    """A TCP server on this machine that accepts connections and never answers: a hung Redis (or PostgreSQL)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:  # closed
                return
            self.accepted.append(client)

    def close(self) -> None:
        self.listener.close()
        for client in self.accepted:
            client.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def request_in_a_thread(client, path: str):
    """The answer to GET `path`, or None if there is none after a minute: the test fails instead of hanging."""
    answers = []
    worker = threading.Thread(target=lambda: answers.append(client.get(path)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    return answers[0] if answers else None


def test_it_answers_503_timeout_when_the_broker_accepts_but_never_answers(client, db, monkeypatch, silent_server):
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{silent_server.port}/0")

    response = request_in_a_thread(client, "/healthz")

    assert response is not None, "/healthz did not answer within a minute"
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "error: timeout"}
    assert silent_server.accepted, "the probe never reached the silent server"


def test_it_answers_503_timeout_when_the_database_never_answers(client, db, monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(120)
        raise OperationalError("gave up")

    try:
        with monkeypatch.context() as patch:
            patch.setattr(type(connections[DEFAULT_DB_ALIAS]), "cursor", hang)
            response = request_in_a_thread(client, "/healthz")
    finally:
        release.set()

    assert response is not None, "/healthz did not answer within a minute"
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error: timeout", "broker": "ok"}
