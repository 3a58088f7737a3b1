"""`make test` runs the race tests a second time with every CPU busy (conftest.py: the race marker, --busy-cpus)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import conftest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.race
def test_every_cpu_is_kept_busy_in_the_busy_run_and_none_otherwise(request):
    if request.config.getoption("--busy-cpus"):
        assert len(conftest.BUSY_CPU_PROCESSES) == len(os.sched_getaffinity(0))
        assert all(process.poll() is None for process in conftest.BUSY_CPU_PROCESSES), "a spinning process ended"
    else:
        assert conftest.BUSY_CPU_PROCESSES == []


def test_the_races_between_connections_are_marked_as_races_and_nothing_else():
    # The randomisation's races, beside a file of single-connection tests and one with a live server of its own.
    files = [
        "randomization/tests/test_concurrency.py",
        "families/tests/test_services.py",
        "tests/test_database_reconnect.py",
    ]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "race", *files],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.splitlines()
    races = {line.split("::")[0] for line in collected if "::" in line}

    assert races == {"randomization/tests/test_concurrency.py"}
    every_race = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "randomization/tests/test_concurrency.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.splitlines()
    assert sum("test_concurrency.py::" in line for line in collected) == sum("::" in line for line in every_race)
