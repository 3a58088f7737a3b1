"""What /healthz reports: can we reach the database and the Celery broker, within about two seconds each?

A service that accepts connections but never answers (a hung Redis or PostgreSQL) must not hang the health check
for a minute: the container's check and the proxy would wait, and a stuck worker would pile up. Each probe runs in
a thread of its own and is given PROBE_SECONDS; one that has not answered by then is reported as "error: timeout".
The broker's probe also gives its sockets that timeout, so that its thread ends soon after.
"""

import threading
from collections.abc import Callable

from django.db import connection

from trial.celery import app as celery_app

PROBE_SECONDS = 2.0
TIMEOUT = "error: timeout"


def _failure(exc: BaseException) -> str:
    """What a failed probe reports: its exception's type, or "timeout" when a timeout caused it (redis-py's
    TimeoutError, wrapped by kombu, is not Python's), never the details (they may hold addresses or passwords)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TimeoutError) or type(cause).__name__ == "TimeoutError":
            return TIMEOUT
        cause = cause.__cause__ or cause.__context__
    return f"error: {type(exc).__name__}"


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"
        return _failure(exc)
    finally:
        # The probe's thread has a connection of its own (Django's are per thread): close it with the thread.
        connection.close()
    return "ok"


def broker_status() -> str:
    sockets = {"socket_timeout": PROBE_SECONDS, "socket_connect_timeout": PROBE_SECONDS}
    try:
        with celery_app.connection_for_write(transport_options=sockets) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=PROBE_SECONDS)
            # Opening a channel is what touches the broker (for the filesystem transport, its folder).
            conn.default_channel.close()
    except Exception as exc:
        return _failure(exc)
    return "ok"


class _Probe:
    def __init__(self, check: Callable[[], str]) -> None:
        self.answer = TIMEOUT
        self.done = threading.Event()
        # A daemon thread: a probe that never returns must not keep the process from exiting.
        threading.Thread(target=self._run, args=(check,), daemon=True, name="healthz-probe").start()

    def _run(self, check: Callable[[], str]) -> None:
        try:
            self.answer = check()
        finally:
            self.done.set()


def statuses() -> dict[str, str]:
    """Every service's status, probed at the same time, each within PROBE_SECONDS."""
    probes = {"database": _Probe(database_status), "broker": _Probe(broker_status)}
    for probe in probes.values():
        probe.done.wait(PROBE_SECONDS)
    return {name: probe.answer if probe.done.is_set() else TIMEOUT for name, probe in probes.items()}
