"""A real Celery worker runs the trial's scheduled jobs, as `celery -A trial worker` does in production.

The worker runs in a thread of this process with its own database connection, so the tests use
`transactional_db`: it sees only what is committed, as a worker in another container would.
Each test's messages go to a queue of its own, so that neither a development worker nor messages
left behind by other tests can take or disturb them.
"""

import time
import uuid
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from kombu import Exchange, Queue

from conftest import require
from trial.celery import app as celery_app

pytestmark = pytest.mark.celery_worker

CLEAR_EXPIRED_SESSIONS = settings.CELERY_BEAT_SCHEDULE["clear-expired-sessions"]["task"]


def make_session(*, expires_in: timedelta) -> str:
    session = SessionStore()
    session["_auth_user_id"] = "1"
    session.create()
    Session.objects.filter(session_key=session.session_key).update(expire_date=timezone.now() + expires_in)
    return session.session_key


@pytest.fixture
def expired_and_live_sessions(transactional_db) -> tuple[str, str]:
    return make_session(expires_in=-timedelta(minutes=1)), make_session(expires_in=timedelta(minutes=30))


@pytest.fixture
def queue(monkeypatch):
    """A queue of this test's own."""
    name = f"test-worker-{uuid.uuid4().hex}"
    queues = celery_app.amqp.queues
    # A worker started with queues=[...] narrows the app's queues to consume from; give them back.
    monkeypatch.setattr(queues, "_consume_from", queues._consume_from)
    yield name
    queues.pop(name, None)


@pytest.mark.redis
def test_it_clears_expired_sessions_in_a_real_worker_with_redis(expired_and_live_sessions, queue):
    require(bool(settings.REDIS_URL), "needs Redis for the Celery worker test (set REDIS_URL)")
    expired, live = expired_and_live_sessions

    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue]):
        # What beat does when the entry is due: send the task by its name.
        result = celery_app.send_task(CLEAR_EXPIRED_SESSIONS, queue=queue)
        deleted = result.get(timeout=20)

    assert deleted == 1
    assert not Session.objects.filter(session_key=expired).exists()
    assert Session.objects.filter(session_key=live).exists()
    with celery_app.connection_for_write() as connection:
        bound = Queue(queue, Exchange(queue), routing_key=queue).bind(connection.default_channel)
        bound.declare()  # the channel deletes only bindings it knows of
        bound.delete()


def test_it_clears_expired_sessions_in_a_real_worker_with_the_filesystem_broker(
    expired_and_live_sessions, queue, monkeypatch, tmp_path
):
    """What `make run` does on a machine without Redis (and what CI, which has Redis, would otherwise miss)."""
    expired, live = expired_and_live_sessions
    folders = {name: tmp_path / name for name in ("messages", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setitem(celery_app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(
        celery_app.conf,
        "broker_transport_options",
        {
            "data_folder_in": str(folders["messages"]),
            "data_folder_out": str(folders["messages"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        },
    )

    # Sent before the worker starts: kombu's filesystem transport writes a message file in place, and a worker
    # polling meanwhile can read it half-written (an empty file: a JSON error, seen on a busy machine).
    # The app's pool may hold a connection made before the broker was switched; send on a fresh one.
    with celery_app.connection_for_write() as connection:
        celery_app.send_task(CLEAR_EXPIRED_SESSIONS, queue=queue, connection=connection)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue]):
        # No result backend here: watch the database instead, for a bounded time.
        deadline = time.monotonic() + 20
        while Session.objects.filter(session_key=expired).exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    assert not Session.objects.filter(session_key=expired).exists()
    assert Session.objects.filter(session_key=live).exists()


def test_it_schedules_only_tasks_a_worker_knows():
    # A worker imports every app's tasks module at start; do the same, then compare names.
    celery_app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert scheduled
    assert scheduled <= set(celery_app.tasks.keys())
