"""Real processes for the tests of message delivery: an SMTP server whose answers a test programs, a private
redis-server a test may stop and start again, and Celery workers and beats running as `celery -A trial ...` does in
production, in processes of their own (so a test can kill one with SIGKILL).

The processes read the test database (which they see only as committed: use `transactional_db`), the private
Redis, and the SMTP server through environment variables that trial/settings.py reads. Import the fixtures into a
test module with `from tests.messaging import smtp_server, redis_server, celery_processes  # noqa: F401`.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from conftest import require
from tests.stack.harness import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
# Every wait is bounded: long enough for a busy 2-core machine, short enough that a broken test fails in a minute.
DEADLINE_SECONDS = 60


def wait_until(condition: Callable[[], object], *, timeout: float = DEADLINE_SECONDS, what: str = "the condition"):
    """Poll `condition` until it is true (returned), failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.1)


# --- SMTP ------------------------------------------------------------------------------------------------------


class ProgrammableHandler:
    """aiosmtpd's handler: answers each message's DATA by the plan (accept, refuse with a code, or stall until
    released), and keeps what it received. `received` counts every message whose content reached the server,
    whatever the answer (a message stalled and then abandoned by its sender may still count as delivered)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: list[str] = []  # "accept", "stall", or an SMTP reply such as "451 4.3.0 Try again later"
        self.refuse_always: str | None = None
        self.accepted: list[EmailMessage] = []
        self.received: list[EmailMessage] = []
        self.refused = 0
        self.stalls = 0  # stalls begun so far
        self._release = threading.Event()

    def plan(self, *answers: str) -> None:
        """The answers to the next messages, in order; then every message is accepted."""
        with self._lock:
            self._plan.extend(answers)

    def release(self) -> None:
        """End the current stall (the answer is then 250, to whoever is still listening)."""
        self._release.set()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content)
        with self._lock:
            self.received.append(message)
            answer = self.refuse_always or (self._plan.pop(0) if self._plan else "accept")
        if answer == "stall":
            self._release.clear()
            with self._lock:
                self.stalls += 1
            while not self._release.is_set():
                await asyncio.sleep(0.05)
            answer = "accept"
        if answer != "accept":
            with self._lock:
                self.refused += 1
            return answer
        with self._lock:
            self.accepted.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [message for message in self.accepted if message["To"] == address]


def subject_of(message: EmailMessage) -> str:
    return str(make_header(decode_header(message["Subject"])))


@pytest.fixture
def smtp_server() -> Iterator["SMTPServer"]:
    server = SMTPServer()
    try:
        yield server
    finally:
        server.handler.release()
        server.controller.stop()


class SMTPServer:
    def __init__(self) -> None:
        self.handler = ProgrammableHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def env(self) -> dict[str, str]:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_TIMEOUT": "10",
        }


# --- Redis -----------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, keeping nothing on disk: stopping it loses every queued task, as a Redis
    that crashed without persistence would (the outbox in PostgreSQL must make up for it)."""
    require(shutil.which("redis-server") is not None, "needs redis-server (apt-get install redis-server)")
    server = RedisProcess(tmp_path, appendonly=False)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def broker(url: str) -> Iterator[None]:
    """This process's Celery app (the web's side, which queues the sweep after a commit) publishes to `url`."""
    from trial.celery import app

    def forget_connections() -> None:
        # Dropped, never closed: kombu keeps one pool per broker URL for the whole process, and a closed one would
        # be handed to the next test that publishes to the same URL ("Acquire on closed pool").
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    forget_connections()
    app.conf.broker_url = url
    try:
        yield
    finally:
        forget_connections()
        app.conf.broker_url = previous


# --- Celery workers and beats ----------------------------------------------------------------------------------


def database_url() -> str:
    """The test database, as the worker processes must reach it."""
    settings = connection.settings_dict
    credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgresql://{credentials}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


class CeleryProcess:
    def __init__(self, kind: str, name: str, env: dict[str, str], log: Path) -> None:
        self.kind, self.name, self.log = kind, name, log
        command = [sys.executable, "-m", "celery", "-A", "trial"]
        if kind == "worker":
            # The solo pool runs the task in the worker's own process: SIGKILL stops the send itself.
            command += ["worker", "--pool=solo", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
            command += ["--without-heartbeat", "--loglevel=info"]
        else:
            command += ["beat", "--loglevel=info", "--pidfile=", "--max-interval=1"]
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        ready = " ready." if kind == "worker" else "beat: Starting"
        wait_until(lambda: ready in self.output() or self.process.poll() is not None, what=f"{name} to start")
        assert self.process.poll() is None, f"{name} stopped:\n{self.output()[-3000:]}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the process (and anything it started, its own session)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


class CeleryProcesses:
    """Workers and beats on the private Redis, delivering by the private SMTP server, with short delivery times
    (MESSAGE_* settings) so that a test takes seconds."""

    def __init__(self, directory: Path, redis: RedisProcess, smtp: SMTPServer) -> None:
        self.directory = directory
        self.running: list[CeleryProcess] = []
        self.settings = {
            "MESSAGE_CLAIM_LEASE_SECONDS": "3",
            "MESSAGE_BACKOFF_SECONDS": "1",
            "MESSAGE_MAX_ATTEMPTS": "3",
            "MESSAGE_SWEEP_SECONDS": "1",
        }
        self.redis, self.smtp = redis, smtp

    def env(self) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "DJANGO_", "EMAIL_", "MESSAGE_", "CELERY_"))
        }
        return {
            **environment,
            "TRIAL_ENV": "test",
            "TRIAL_VAR_DIR": str(self.directory),
            "DJANGO_SETTINGS_MODULE": "trial.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis.url,
            "LOG_LEVEL": "INFO",
            **self.smtp.env,
            **self.settings,
        }

    def start(self, kind: str, name: str) -> CeleryProcess:
        process = CeleryProcess(kind, name, self.env(), self.directory / f"{name}.log")
        self.running.append(process)
        return process

    def worker(self, name: str = "worker") -> CeleryProcess:
        return self.start("worker", name)

    def beat(self, name: str = "beat") -> CeleryProcess:
        return self.start("beat", name)

    def stop_all(self) -> None:
        for process in self.running:
            process.kill(signal.SIGKILL)
        self.running.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {process.name}\n{process.output()[-4000:]}" for process in self.running)


@pytest.fixture
def celery_processes(transactional_db, tmp_path, redis_server, smtp_server) -> Iterator[CeleryProcesses]:
    """Start workers and beats with `.worker(name)` and `.beat(name)`; all are killed when the test ends (before
    the test database is emptied)."""
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL): the workers share its data")
    processes = CeleryProcesses(tmp_path, redis_server, smtp_server)
    try:
        with broker(redis_server.url):
            yield processes
    finally:
        processes.stop_all()
