"""`make bench` runs to its end: every benchmark of bench/run.py, at a tiny size, against a throw-away PostgreSQL
database on the test server. The figures mean nothing at this size and nothing about them is asserted; what is
checked is that the benchmarks still run (one stopped unnoticed once, when a later database constraint refused the
rows its bulk fill wrote)."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
from django.conf import settings

from conftest import require
from tests.messaging import database_url

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "BENCH_FAMILIES": "30",
    "BENCH_REQUESTS": "4",
    "BENCH_ALLOCATIONS": "16",
    "BENCH_PARTNERS": "8",
    "BENCH_VISIT_FAMILIES": "36",
    "BENCH_CONTACTS": "300",
    "BENCH_GRID_FAMILIES": "40",
    "BENCH_GRID_REQUESTS": "2",
    "BENCH_SWEEP_SIZES": "20,40",
    "BENCH_REPORT_FAMILIES": "40",
    "BENCH_REPORT_EXCLUDED": "10",
    "BENCH_REPORT_CONTACTS": "300",
    "BENCH_REPORT_RUNS": "1",
    "BENCH_DATASET_SIZES": "20,40",
    "BENCH_API_ALLOCATIONS": "16",
    "BENCH_API_REQUESTS": "16",
}


def _server_url() -> str:
    """The test database's server (tests/messaging.py knows how the test database is reached)."""
    return database_url().rsplit("/", 1)[0]


def test_every_benchmark_runs_to_its_table():
    require("postgresql" in settings.DATABASES["default"]["ENGINE"], "needs PostgreSQL (set DATABASE_URL)")
    name = f"familypartner_bench_smoke_{os.getpid()}"
    environment = {**os.environ, **TINY, "BENCH_DATABASE_URL": f"{_server_url()}/{name}"}
    try:
        result = subprocess.run(
            [sys.executable, "bench/run.py"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900
        )
    finally:
        connection = psycopg2.connect(f"{_server_url()}/postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.close()
    assert result.returncode == 0, f"make bench failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    api_rows = ("randomise, API, 16 concurrent", "randomise, page, 16 concurrent", "family list, API, 16 concurrent")
    other_tables = ("reminder sweep", "families dataset, CSV streamed", "report figures")
    for table in ("| what ", "| clients |", *api_rows, *other_tables):
        assert table in result.stdout, f"{table!r} missing from the benchmark's output:\n{result.stdout[-4000:]}"
