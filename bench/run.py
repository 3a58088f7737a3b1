"""`make bench`: how fast the foundation's hot paths are, printed as a table.

Runs against a throw-away database (PostgreSQL `familypartner_bench` when reachable, else SQLite in
var/), fills it with a realistic trial (3 sites, FAMILIES families, each with a household, a screening
and most with consent), then measures:
- registration throughput and latency with 1, 4 and 8 concurrent researchers at one site (the site-row
  lock that keeps study IDs gapless is the serialisation point);
- server time of the family list (search, filter, paging) and of a family page with its timeline.
Times are wall-clock on this machine; nothing here is asserted.
"""

import os
import statistics
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
os.environ.setdefault("TRIAL_ENV", "test")  # a fixed encryption key; never touches development data

FAMILIES = int(os.environ.get("BENCH_FAMILIES", "3000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))


def _database_url() -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    try:
        import psycopg2

        psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()
    except Exception:
        return f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}"
    return "postgresql://postgres@127.0.0.1:5432/familypartner_bench"


def _recreate_database(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg2

    name = url.rsplit("/", 1)[1]
    conn = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_concurrently(clients: int, calls_per_client: int, call) -> tuple[list[float], float]:
    """Run `call` from `clients` threads at once (each with its own database connection);
    returns every call's latency in seconds and the elapsed wall time."""
    from django.db import connection

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        barrier.wait()
        mine = [call() for _ in range(calls_per_client)]
        with lock:
            latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


def main() -> None:
    url = _database_url()
    _recreate_database(url)
    os.environ["DATABASE_URL"] = url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)

    from families import services
    from families.models import Family
    from families.tests.factories import family_in_state
    from trial.models import Site
    from trial.roles import Role
    from trial.tests.factories import UserFactory

    sites = list(Site.objects.order_by("code"))
    researcher = UserFactory(username="bench", roles=[Role.RESEARCHER], sites=sites)

    started = time.perf_counter()
    states = ["consented", "consented", "eligible", "ineligible", "referred", "declined"]
    for i in range(FAMILIES):
        family_in_state(states[i % len(states)], site=sites[i % len(sites)], by=researcher)
    fill_seconds = time.perf_counter() - started

    rows = []

    def register_once(site) -> float:
        t0 = time.perf_counter()
        services.family_register(
            site=site,
            referral_date=date.today() - timedelta(days=3),
            referral_source="child_welfare_caseworker",
            parent_birth_years=[1990],
            child_birth_dates=[date(2018, 5, 1)],
            identifiers=services.Identifiers(contact_name="Bench Forelder", phone="91234567"),
            registered_by=researcher,
            token=uuid.uuid4(),
        )
        return time.perf_counter() - t0

    site = sites[0]
    for clients in (1, 4, 8):
        latencies, elapsed = run_concurrently(clients, max(1, REQUESTS // clients), lambda: register_once(site))
        rows.append(
            (
                f"register family, {clients} concurrent",
                len(latencies),
                f"{len(latencies) / elapsed:.0f}/s",
                statistics.median(latencies) * 1000,
                percentile(latencies, 0.95) * 1000,
                "",
            )
        )
    numbers = list(Family.objects.filter(site=site).order_by("number").values_list("number", flat=True))
    gapless = numbers == list(range(1, len(numbers) + 1))

    client = Client()
    client.force_login(researcher)
    detail_family = Family.objects.filter(status="consented").first()
    assert detail_family is not None, "the filled trial has consented families"
    pages = [
        ("family list, page 1", "/families/"),
        ("family list, page 40", "/families/?page=40"),
        ("family list, search + filter", f"/families/?q=OEI-00&status=consented&site={site.pk}"),
        ("family page with timeline", f"/families/{detail_family.study_id}/"),
    ]
    for label, path in pages:
        client.get(path)  # warm up
        times = []
        for _ in range(max(20, REQUESTS // 4)):
            t0 = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, (path, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        rows.append(
            (label, len(times), "", statistics.median(times) * 1000, percentile(times, 0.95) * 1000, str(len(queries)))
        )

    print()
    print(
        f"database: {connection.vendor} ({url.split('@')[-1]}), {Family.objects.count()} families "
        f"(filled in {fill_seconds:.0f} s); study numbers at {site.code} gapless after the runs: {gapless}"
    )
    print()
    header = ("what", "n", "rate", "median ms", "p95 ms", "queries")
    print(f"| {header[0]:<36} | {header[1]:>5} | {header[2]:>7} | {header[3]:>9} | {header[4]:>8} | {header[5]:>7} |")
    print(f"|{'-' * 38}|{'-' * 7}|{'-' * 9}|{'-' * 11}|{'-' * 10}|{'-' * 9}|")
    for what, n, rate, median, p95, query_count in rows:
        print(f"| {what:<36} | {n:>5} | {rate:>7} | {median:>9.1f} | {p95:>8.1f} | {query_count:>7} |")
    print()


if __name__ == "__main__":
    main()
