"""The README's API walk-through, run as written: the demo trial loaded, a live server, the README's fenced block's
lines run one by one (`KEY=$(… manage.py create_api_token …)` as the management command in a subprocess, each
`curl` as a real curl), and each answer checked. So the README cannot drift from the API."""

import csv
import importlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from conftest import require
from families.models import Family, FamilyStatus
from randomization.models import Allocation

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEMO_ADDRESS = "http://127.0.0.1:8000"


def readme_api_block() -> str:
    """The fenced shell block of the README's "Scripts: the API" section."""
    section = README.read_text().split("## Scripts: the API", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README's API section has a ```sh block"
    return match.group(1)


def readme_commands() -> list[str]:
    """The block's commands, a continued line (ending in a backslash) joined to the next."""
    joined = readme_api_block().replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_it_has_the_readme_walk_through_make_a_token_call_me_randomise_and_download():
    commands = readme_commands()
    token, call = "KEY=$(.venv/bin/python", "curl"
    assert [command.split()[0] for command in commands] == [token, call, call, token, call, call]
    text = README.read_text()
    assert "`/api/v1/schema/`" in text and "`/api/v1/docs/`" in text, "both in the README's More list"


def seed_sites_and_settings() -> None:
    from django.apps import apps

    importlib.import_module("trial.migrations.0002_seed_sites_and_settings").seed(apps, None)
    importlib.import_module("trial.migrations.0006_trial_settings_starting_values").record_starting_values(apps, None)


def database_url() -> str:
    """The test database, for the management command's own process (the live server's data is committed)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def run_manage(command: str, env: dict) -> str:
    """`.venv/bin/python manage.py …` of the README, run with this Python against the test database."""
    words = shlex.split(command)
    assert words[:2] == [".venv/bin/python", "manage.py"], words
    result = subprocess.run(
        [sys.executable, *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert re.fullmatch(r"fpt_[0-9a-f]{8}_[\w-]+", key), "the command prints the key alone on stdout"
    return key


def run_curl(command: str, *, address: str, env: dict, workdir: Path) -> tuple[int, bytes]:
    """A curl line of the README against the live server, with its status code written after the body."""
    line = command.replace(DEMO_ADDRESS, address)
    result = subprocess.run(
        ["bash", "-c", line + " -w '\\n%{http_code}'"],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


def test_the_readmes_api_walk_through_works_against_the_demo(postgres, transactional_db, live_server, tmp_path):
    require(shutil.which("curl") is not None, "needs curl")
    require(connection.vendor == "postgresql", "the management command's process needs the test database")
    seed_sites_and_settings()  # an earlier transactional test may have emptied the tables the migrations seed
    call_command("load_demo", stdout=io.StringIO())
    randomise = next(command for command in readme_commands() if "/randomisations/" in command)
    study_id = json.loads(re.search(r"-d '([^']+)'", randomise).group(1))["study_id"]
    family = Family.objects.get(study_id=study_id)
    assert family.status == FamilyStatus.CONSENTED, "the README randomises the family the demo leaves to randomise"

    env = {
        "PATH": os.environ["PATH"],
        "TRIAL_ENV": "test",
        "DATABASE_URL": database_url(),
        "TRIAL_VAR_DIR": str(settings.VAR_DIR),
        **{name: os.environ[name] for name in ("ENCRYPTION_KEYS", "SECRET_KEY", "REDIS_URL") if name in os.environ},
    }
    answers = []
    for command in readme_commands():
        if command.startswith("KEY=$("):
            env["KEY"] = run_manage(command.removeprefix("KEY=$(").removesuffix(")"), env)
            continue
        answers.append(run_curl(command, address=live_server.url, env=env, workdir=tmp_path))

    (me_status, me), (randomised_status, randomised), (dataset_status, _), (audit_status, _) = answers
    assert me_status == 200
    assert json.loads(me)["username"] == "researcher"
    assert randomised_status == 201, randomised
    allocation = Allocation.objects.get(family=family)
    assert json.loads(randomised)["study_id"] == study_id
    assert json.loads(randomised)["arm"] == allocation.arm, "the researcher is shown the arm"

    assert dataset_status == 200
    families_csv = (tmp_path / "families.csv").read_text(encoding="utf-8-sig")
    header = next(csv.reader(io.StringIO(families_csv)))
    assert header[0] == "study_id"
    assert study_id in families_csv

    assert audit_status == 200
    audit_rows = list(csv.reader(io.StringIO((tmp_path / "audit-log.csv").read_text(encoding="utf-8-sig"))))
    about_the_family = [" ".join(row) for row in audit_rows if any(study_id in cell for cell in row)]
    assert any("andomis" in row for row in about_the_family), "the audit log has the randomisation"
    assert any("randomise script" in row for row in about_the_family), "made through the API, with the token's name"


def test_create_api_token_prints_the_key_once_and_refuses_scopes_beyond_the_roles(db, alice, carol, capsys):
    call_command("create_api_token", "alice", "--name", "nightly", "--scope", "randomise")
    key = capsys.readouterr().out.strip()
    assert key.startswith("fpt_")
    from api.tokens import token_for_key

    token = token_for_key(key)
    assert token is not None and token.name == "nightly" and token.scopes == ["read", "randomise"]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="randomise"):
        call_command("create_api_token", "carol", "--name", "blinded", "--scope", "randomise")
    with pytest.raises(CommandError, match="No active user"):
        call_command("create_api_token", "nobody", "--name", "x")
