"""Production settings: Django's deployment checks pass, and the process refuses to start when misconfigured.

Each test starts `manage.py` in a fresh process, because settings are read once per process and this
test run is itself the test environment.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Every variable trial/settings.py reads; the outer environment must not leak any of them into a check.
SETTINGS_VARIABLES = [
    "TRIAL_ENV",
    "DJANGO_DEBUG",
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "REDIS_URL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "TRUST_X_FORWARDED_PROTO",
    "TRUSTED_PROXY_COUNT",
    "SESSION_IDLE_MINUTES",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_MINUTES",
    "LOG_LEVEL",
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "DEFAULT_FROM_EMAIL",
    "MESSAGE_CLAIM_LEASE_SECONDS",
    "MESSAGE_BACKOFF_SECONDS",
    "MESSAGE_MAX_ATTEMPTS",
    "MESSAGE_SWEEP_SECONDS",
    "CELERY_VISIBILITY_TIMEOUT_SECONDS",
    "TRIAL_VAR_DIR",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    # pytest sets this for its session, and settings take its presence to mean "test environment".
    "PYTEST_VERSION",
    "DJANGO_SETTINGS_MODULE",
]


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """What an operator puts in .env: real secrets, one host, PostgreSQL (here a SQLite file)."""
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    env.update(
        TRIAL_ENV="production",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="trial.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'trial.sqlite3'}",
        TRIAL_VAR_DIR=str(tmp_path / "var"),
    )
    return env


def env_example() -> dict[str, str]:
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_python(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "trial.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_passes_djangos_deployment_checks_without_a_single_warning(production_env):
    result = run_manage(production_env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_with_debug_on(production_env):
    production_env["DJANGO_DEBUG"] = "true"

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: DJANGO_DEBUG is on" in result.stderr


def test_it_refuses_to_start_without_a_secret_key(production_env):
    del production_env["SECRET_KEY"]

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: set SECRET_KEY" in result.stderr


def test_it_refuses_to_start_with_the_development_secret_key(production_env):
    production_env["SECRET_KEY"] = "development-only-secret-key-never-use-in-production"

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: set SECRET_KEY" in result.stderr


def test_it_refuses_to_start_with_a_short_secret_key(production_env):
    production_env["SECRET_KEY"] = "too-short"

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: set SECRET_KEY" in result.stderr


def test_it_refuses_to_start_without_an_encryption_key(production_env):
    del production_env["ENCRYPTION_KEYS"]

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: set ENCRYPTION_KEYS" in result.stderr


def test_it_refuses_to_start_with_an_encryption_key_that_is_not_a_fernet_key(production_env):
    """A mistyped key must stop the deployment, not the first researcher who registers a family."""
    production_env["ENCRYPTION_KEYS"] = f"{Fernet.generate_key().decode()},paste-the-old-key-here"

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "ENCRYPTION_KEYS" in result.stderr


def test_it_ignores_a_development_key_file_in_production(production_env):
    """A key file left in var/ by `make run` must never silently become the production key."""
    var_dir = Path(production_env["TRIAL_VAR_DIR"])
    var_dir.mkdir()
    (var_dir / "encryption.key").write_text(Fernet.generate_key().decode())
    del production_env["ENCRYPTION_KEYS"]

    result = run_manage(production_env, "check")

    assert result.returncode != 0
    assert "Refusing to start: set ENCRYPTION_KEYS" in result.stderr


def test_it_hashes_passwords_with_argon2_in_production(production_env):
    result = run_python(
        production_env,
        "import django; django.setup(); from django.conf import settings; print(settings.PASSWORD_HASHERS[0])",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_it_collects_the_static_files_and_serves_pages_with_them(production_env, tmp_path):
    """What the image build does (collectstatic with the hashed-name manifest), then a page and its stylesheet."""
    static_root = tmp_path / "staticfiles"
    result = run_python(
        production_env,
        "import json, re, sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.test import Client\n"
        "from django.test.utils import override_settings\n"
        "with override_settings(STATIC_ROOT=sys.argv[1]):\n"
        "    call_command('collectstatic', interactive=False, verbosity=0)\n"
        "    client = Client(HTTP_HOST='trial.example.org')\n"
        "    page = client.get('/accounts/login/', secure=True)\n"
        '    stylesheets = re.findall(r\'href="(/static/[^"]+[.]css)"\', page.content.decode())\n'
        "    answers = [client.get(url, secure=True).status_code for url in stylesheets]\n"
        "print(json.dumps({'page': page.status_code, 'stylesheets': stylesheets, 'answers': answers}))\n",
        str(static_root),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["page"] == 200
    assert answers["stylesheets"]
    assert set(answers["answers"]) == {200}


def test_it_redirects_pages_to_https_but_answers_healthz_over_plain_http(production_env):
    """The container's health check calls /healthz over plain HTTP; everything else goes to HTTPS."""
    result = run_python(
        production_env,
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='trial.example.org')\n"
        "page, health = client.get('/accounts/login/'), client.get('/healthz')\n"
        "print(json.dumps({'page': [page.status_code, page.get('Location')],"
        " 'health': [health.status_code, health.json()]}))",
    )

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["page"] == [301, "https://trial.example.org/accounts/login/"]
    assert answers["health"] == [200, {"status": "ok", "database": "ok", "broker": "ok"}]


def test_it_trusts_the_proxys_https_header_only_when_told_to(production_env):
    """Behind the TLS-terminating proxy, a request that came in over HTTPS must not be redirected again."""
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "answer = Client(HTTP_HOST='trial.example.org').get('/', HTTP_X_FORWARDED_PROTO='https')\n"
        "print(answer.status_code, answer['Location'])"
    )

    untrusted = run_python(production_env, code)
    trusted = run_python({**production_env, "TRUST_X_FORWARDED_PROTO": "true"}, code)

    assert untrusted.returncode == 0, untrusted.stderr
    assert trusted.returncode == 0, trusted.stderr
    # Not trusted: the header is ignored, the request counts as plain HTTP and is sent to HTTPS.
    assert untrusted.stdout.strip().splitlines()[-1] == "301 https://trial.example.org/"
    # Trusted: the request counts as HTTPS and reaches the page (which asks an anonymous user to log in).
    assert trusted.stdout.strip().splitlines()[-1] == "302 /accounts/login/?next=/"


def test_it_documents_every_variable_the_settings_read_in_env_example():
    settings_source = (PROJECT_ROOT / "trial" / "settings.py").read_text()
    read = set(re.findall(r'(?:os\.environ\.get|envbool|envint|envlist)\("([A-Z_]+)"', settings_source))
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.MULTILINE))

    assert "SECRET_KEY" in read
    assert read - documented == set()


def test_it_refuses_to_start_with_env_example_copied_but_not_filled_in(tmp_path):
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    env.update(env_example(), TRIAL_VAR_DIR=str(tmp_path))

    result = run_manage(env, "check")

    assert result.returncode != 0
    assert "Refusing to start" in result.stderr


def test_it_passes_the_deployment_checks_with_env_example_filled_in(production_env):
    env = {**production_env, **env_example()}
    env.update(SECRET_KEY=production_env["SECRET_KEY"], ENCRYPTION_KEYS=production_env["ENCRYPTION_KEYS"])

    result = run_manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
