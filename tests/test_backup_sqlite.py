"""Backups are PostgreSQL's: on a development database (SQLite) the commands say what to do instead."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_it_says_a_development_database_is_a_file_to_copy(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "TRIAL_", "DJANGO_", "PYTEST")) and key != "REDIS_URL"
    }
    env.update(TRIAL_ENV="development", TRIAL_VAR_DIR=str(tmp_path))

    result = subprocess.run(
        [sys.executable, "manage.py", "backup"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 1
    assert "Backups are for PostgreSQL" in result.stderr
    assert f"copy {tmp_path / 'trial.sqlite3'}" in result.stderr
    assert not (tmp_path / "backups").exists()
