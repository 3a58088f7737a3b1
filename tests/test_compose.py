"""docker-compose.yml, checked with Debian's compose implementation (`docker-compose config`, which needs no Docker
engine): it is valid with an .env made from .env.example, and its web, worker, beat and migrate commands are the ones
the production-stack tests run (tests/stack/harness.py), apart from the options that only a run on one machine needs
(a port, TLS files, a worker's name, a scratch folder: in production those are the proxy's and gunicorn.conf.py's)."""

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import require
from tests.stack import harness

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("migrate", "web", "worker", "beat")

# Options of the harness's commands that the compose file leaves to its defaults (gunicorn.conf.py binds
# 0.0.0.0:8000 with its own worker count; the reverse proxy terminates TLS; Celery names its worker after the host).
RUN_ONLY_WITH_VALUE = {
    "--bind",
    "--workers",
    "--worker-tmp-dir",
    "--certfile",
    "--keyfile",
    "-n",
    "--schedule",
    "--verbosity",
}
RUN_ONLY_FLAGS = re.compile(r"^--(concurrency|pidfile|max-interval)(=.*)?$")


def env_file(directory: Path) -> Path:
    """.env.example with its secrets filled in, as an operator fills it."""
    filled = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": "k" * 43 + "=",
        "POSTGRES_PASSWORD": secrets.token_hex(24),
    }
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={filled[name]}" if name in filled and not line.startswith("#") else line)
    path = directory / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def harness_commands(monkeypatch) -> dict[str, list[str]]:
    """The commands tests/stack/harness.py starts, recorded without starting anything."""
    started: dict[str, list[str]] = {}

    class Recorded:
        def __init__(self, name, command, env, log, ready, *code_root):
            started[name] = list(command)

    stack = harness.ProductionStack(ROOT / "var" / "compose-check-unused")
    monkeypatch.setattr(harness, "Process", Recorded)
    monkeypatch.setattr(harness, "wait_until", lambda *args, **kwargs: True)
    monkeypatch.setattr(stack, "env", lambda application_name="": {})
    monkeypatch.setattr(stack, "manage", lambda *arguments, **options: started.setdefault("migrate", list(arguments)))
    stack.cert = stack.key = Path("tls")
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    stack.migrate()
    started["migrate"] = ["python", "manage.py", *started["migrate"]]
    return started


def without_run_only_options(command: list[str]) -> list[str]:
    kept, skip = [], False
    for word in command:
        if skip:
            skip = False
        elif word in RUN_ONLY_WITH_VALUE:
            skip = True
        elif not RUN_ONLY_FLAGS.match(word):
            kept.append(word)
    return kept


@pytest.fixture
def compose_config(tmp_path) -> dict:
    compose = shutil.which("docker-compose")
    require(compose is not None, "needs docker-compose (apt-get install docker-compose)")
    assert compose is not None
    # The services read `.env` beside the compose file (env_file), and compose its variables: a copy of the file in
    # a folder of the test's own, with the filled-in example beside it, never the checkout's .env.
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    result = subprocess.run(
        [compose, "--env-file", str(env_file(tmp_path)), "-f", str(tmp_path / "docker-compose.yml"), "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_compose_file_is_valid_with_the_example_env(compose_config):
    assert set(SERVICES) | {"postgres", "redis"} <= set(compose_config["services"])
    web = compose_config["services"]["web"]
    assert web["environment"]["TRIAL_ENV"] == "production"
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_compose_file_runs_the_commands_the_stack_tests_run(compose_config, monkeypatch):
    stack_commands = harness_commands(monkeypatch)
    for service in SERVICES:
        command = compose_config["services"][service]["command"]
        assert without_run_only_options(stack_commands[service]) == command, service


def test_it_tells_a_run_only_option_from_a_command_that_differs():
    # The comparison is not blind: a compose command that differs in more than the run's options is caught.
    harness_web = ["gunicorn", "--config", "trial/gunicorn.conf.py", "--bind", "127.0.0.1:1", "trial.wsgi"]
    assert without_run_only_options(harness_web) == ["gunicorn", "--config", "trial/gunicorn.conf.py", "trial.wsgi"]
    assert without_run_only_options(harness_web) != ["gunicorn", "trial.wsgi"]
