"""Gunicorn keeps its database connections between requests (DATABASE_CONN_MAX_AGE); when PostgreSQL restarts or
kills them, the next request must open a new one instead of failing with a 500 on the dead one.

The test runs Gunicorn with production settings against the test database, as the web container does, makes a
request that reads the database, has PostgreSQL terminate the worker's connection (pg_terminate_backend, what a
restart or an administrator does) and makes the same request again.
"""

import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tests.test_production_settings import SETTINGS_VARIABLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APPLICATION_NAME = "trial-reconnect-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The test database, with a name on the connection so that the test can find Gunicorn's."""
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return (
        f"postgresql://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
        f"/{settings['NAME']}?application_name={APPLICATION_NAME}"
    )


def get_home(port: int) -> int:
    """The status of the home page for a visitor with a session cookie: reading the session needs the database
    (the answer is a redirect to the login page, which needs no template nor static file)."""
    server = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        server.request("GET", "/", headers={"Host": "127.0.0.1", "Cookie": "sessionid=no-such-session"})
        return server.getresponse().status
    finally:
        server.close()


def wait_until_serving(port: int, server: subprocess.Popen) -> None:
    for _attempt in range(300):
        if server.poll() is not None:
            pytest.fail(f"Gunicorn stopped: {server.stdout.read() if server.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)  # polling a port that is not open yet, not synchronising threads
    pytest.fail("Gunicorn did not start")


def terminate_gunicorns_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def gunicorn(postgres, tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    env.update(
        TRIAL_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url(),
        DATABASE_CONN_MAX_AGE="600",
        SECURE_SSL_REDIRECT="false",
        TRIAL_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="trial.settings",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "trial/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-tmp-dir",
            str(tmp_path),
            "trial.wsgi",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.postgres
def test_it_answers_without_a_500_after_postgresql_killed_its_connection(gunicorn):
    assert get_home(gunicorn) == 302
    assert terminate_gunicorns_connections() == 1, "Gunicorn's worker kept no connection open"

    assert get_home(gunicorn) == 302
    assert get_home(gunicorn) == 302
