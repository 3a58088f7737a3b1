"""The application type-checks (STYLE.md: mypy with django-stubs), so that `make test`, and so CI, catches
a type error. What is checked and how is in mypy.ini; `make typecheck` runs the same check."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_it_type_checks_the_application_with_mypy_and_django_stubs():
    # mypy keeps its cache in .mypy_cache at the root: a run after the first takes about a second.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
