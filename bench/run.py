"""`make bench`: how fast the foundation's hot paths are, printed as tables.

Runs against a throw-away database (PostgreSQL `familypartner_bench` when reachable, else SQLite in
var/; BENCH_DATABASE_URL names another), fills it with a realistic trial (3 sites, FAMILIES families,
each with a household, a screening and most with consent), then measures:
- registration throughput and latency with 1, 4 and 8 concurrent researchers at one site (the site-row
  lock that keeps study IDs gapless is the serialisation point);
- server time of the family list (search, filter, paging) and of a family page with its timeline;
- randomisation (PostgreSQL only): ALLOCATIONS families randomised by 1, 4 and 16 concurrent researchers
  at one site, all queueing for that site's list lock (a fresh site and list for each run), in
  allocations per second and p95 latency. Beside it the ceiling: the same clients running a bare
  `SELECT ... FOR UPDATE` of one counter row + `INSERT` of a log row per transaction on the same
  database, and the ratio of the two rates (the goal is at least half the ceiling). After each run the
  site's allocations are checked (positions 1..N without gaps or repeats, one allocation per family, the
  list's `used`, arms as the entries say, the list's verification); anything wrong is an anomaly.
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
ALLOCATIONS = int(os.environ.get("BENCH_ALLOCATIONS", "400"))
RANDOMISING_CLIENTS = (1, 4, 16)


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
    """Run `call` from `clients` threads at once (each with its own database connection, opened before
    the clock starts); returns every call's latency in seconds and the elapsed wall time."""
    from django.db import connection

    latencies: list[float] = []
    lock = threading.Lock()
    started: list[float] = []
    barrier = threading.Barrier(clients, action=lambda: started.append(time.perf_counter()))

    def client() -> None:
        connection.ensure_connection()
        barrier.wait()
        mine = [call() for _ in range(calls_per_client)]
        with lock:
            latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started[0]


# The ceiling of randomisation at one site: the least any allocation from a shared list must do, in one
# transaction: lock one row, insert one row, commit. Plain tables, outside the Django models.
CEILING_TABLES = [
    "CREATE TABLE bench_ceiling_counter (id integer PRIMARY KEY, value bigint NOT NULL)",
    "INSERT INTO bench_ceiling_counter (id, value) VALUES (1, 0)",
    "CREATE TABLE bench_ceiling_log (id bigserial PRIMARY KEY, counter_id integer NOT NULL, value bigint NOT NULL, "
    "logged_at timestamptz NOT NULL DEFAULT now())",
]


def ceiling_transaction() -> float:
    from django.db import connection, transaction

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT value FROM bench_ceiling_counter WHERE id = 1 FOR UPDATE")
        (value,) = cursor.fetchone()
        cursor.execute("INSERT INTO bench_ceiling_log (counter_id, value) VALUES (1, %s)", [value])
    return time.perf_counter() - t0


def randomisation_anomalies(site, expected: int, failures: list[str], data_manager) -> list[str]:
    """Everything wrong with the allocations at `site` after a run of `expected` randomisations, one
    line per anomaly (none when the run was right)."""
    from collections import Counter

    from families.models import Family
    from randomization.models import Allocation, AllocationList
    from randomization.services import allocation_list_verify

    anomalies = list(failures)
    allocation_list = AllocationList.objects.get(site=site)
    allocations = list(Allocation.objects.filter(site=site).select_related("entry"))
    positions = Counter(allocation.position for allocation in allocations)
    anomalies += [f"position {position} given {n} times" for position, n in sorted(positions.items()) if n > 1]
    anomalies += [
        f"position {position} skipped" for position in range(1, max(positions, default=0)) if not positions[position]
    ]
    if len(allocations) != expected:
        anomalies.append(f"{len(allocations)} allocations, {expected} expected")
    families = Counter(allocation.family_id for allocation in allocations)
    anomalies += [f"family {pk} allocated {n} times" for pk, n in families.items() if n > 1]
    if allocation_list.used != len(allocations):
        anomalies.append(f"list used {allocation_list.used}, {len(allocations)} allocations")
    anomalies += [
        f"position {allocation.position}: arm or entry differs from the list"
        for allocation in allocations
        if allocation.entry.allocation_list_id != allocation_list.pk
        or allocation.entry.position != allocation.position
        or allocation.entry.sealed_arm != allocation.arm
    ]
    randomised = Family.objects.filter(site=site, status="randomised").count()
    if randomised != len(allocations):
        anomalies.append(f"{randomised} families randomised, {len(allocations)} allocations")
    verification = allocation_list_verify(allocation_list=allocation_list, verified_by=data_manager)
    anomalies += [f"verification: {finding}" for finding in verification.findings]
    if not verification.passed and not verification.findings:
        anomalies.append("verification failed")
    return anomalies


def benchmark_randomisation(sites: list, researcher, data_manager) -> tuple[list[tuple], list[str], float]:
    """The randomisation rows (one per number of clients), the anomaly lines, and the fill time."""
    from collections import deque

    from django.db import connection

    from families.models import Family
    from families.tests.factories import family_in_state
    from randomization import services as randomisation

    with connection.cursor() as cursor:
        for statement in CEILING_TABLES:
            cursor.execute(statement)

    started = time.perf_counter()
    for site in sites:
        for _ in range(ALLOCATIONS):
            family_in_state("consented", site=site, by=researcher)
    fill_seconds = time.perf_counter() - started

    rows, report = [], []
    for clients, site in zip(RANDOMISING_CLIENTS, sites, strict=True):
        per_client = max(1, min(ALLOCATIONS, randomisation.MAX_LIST_LENGTH) // clients)
        # Longer than the run needs, so that no "running low" alert is claimed mid-run.
        randomisation.allocation_list_generate(
            site=site, generated_by=data_manager, length=min(randomisation.MAX_LIST_LENGTH, 2 * per_client * clients)
        )
        families = deque(Family.objects.filter(site=site, status="consented").order_by("number"))
        failures: list[str] = []

        def randomise_once(site=site, families=families, failures=failures) -> float:
            family = families.popleft()
            t0 = time.perf_counter()
            try:
                if not randomisation.family_randomise(
                    family=family, confirmed_site=site, randomised_by=researcher
                ).created:
                    failures.append(f"{family.study_id}: an earlier allocation returned")
            except Exception as error:  # a failed randomisation is an anomaly of the run, not the end of it
                failures.append(f"{family.study_id}: {error!r}")
            return time.perf_counter() - t0

        latencies, elapsed = run_concurrently(clients, per_client, randomise_once)
        ceiling, ceiling_elapsed = run_concurrently(clients, per_client, ceiling_transaction)
        anomalies = randomisation_anomalies(site, per_client * clients, failures, data_manager)
        rate, ceiling_rate = len(latencies) / elapsed, len(ceiling) / ceiling_elapsed
        rows.append(
            (
                clients,
                len(latencies),
                rate,
                percentile(latencies, 0.95) * 1000,
                ceiling_rate,
                percentile(ceiling, 0.95) * 1000,
                rate / ceiling_rate,
                len(anomalies),
            )
        )
        report.append(
            f"{site.code}, {clients} concurrent: {len(latencies)} randomised, {len(anomalies)} anomalies"
            + "".join(f"\n  - {line}" for line in anomalies[:20])
            + (f"\n  - ... and {len(anomalies) - 20} more" if len(anomalies) > 20 else "")
        )
    return rows, report, fill_seconds


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
    # One fresh site per randomisation run: its list is new and every client contends for its lock.
    randomising_sites = [
        Site.objects.create(code=f"BA{chr(ord('A') + i)}", name=f"Bench randomisation {i + 1}", expected_recruitment=1)
        for i in range(len(RANDOMISING_CLIENTS))
    ]
    randomiser = UserFactory(username="bench-randomiser", roles=[Role.RESEARCHER], sites=randomising_sites)
    data_manager = UserFactory(username="bench-data-manager", roles=[Role.DATA_MANAGER])

    started = time.perf_counter()
    states = ["consented", "consented", "eligible", "ineligible", "referred", "declined"]
    for i in range(FAMILIES):
        # Every site gets every state (the states cycle within each site's turn), so filters find families.
        family_in_state(states[i % len(states)], site=sites[(i // len(states)) % len(sites)], by=researcher)
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
        ("family list, search + filter", f"/families/?q={site.code}-0&status=consented&site={site.pk}"),
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

    family_count = Family.objects.count()
    postgres = connection.vendor == "postgresql"
    if postgres:
        randomisation_rows, randomisation_report, randomisation_fill = benchmark_randomisation(
            randomising_sites, randomiser, data_manager
        )

    print()
    print(
        f"database: {connection.vendor} ({url.split('@')[-1]}), {family_count} families "
        f"(filled in {fill_seconds:.0f} s); study numbers at {site.code} gapless after the runs: {gapless}"
    )
    print()
    header = ("what", "n", "rate", "median ms", "p95 ms", "queries")
    print(f"| {header[0]:<36} | {header[1]:>5} | {header[2]:>7} | {header[3]:>9} | {header[4]:>8} | {header[5]:>7} |")
    print(f"|{'-' * 38}|{'-' * 7}|{'-' * 9}|{'-' * 11}|{'-' * 10}|{'-' * 9}|")
    for what, n, rate, median, p95, query_count in rows:
        print(f"| {what:<36} | {n:>5} | {rate:>7} | {median:>9.1f} | {p95:>8.1f} | {query_count:>7} |")
    print()
    if not postgres:
        print("randomisation: needs PostgreSQL (SELECT ... FOR UPDATE), not measured on SQLite")
        print()
        return
    print(
        f"randomisation at one site, every client queueing for its list's lock ({len(RANDOMISING_CLIENTS)} sites "
        f"of {ALLOCATIONS} consented families, filled in {randomisation_fill:.0f} s)"
    )
    print("ceiling: the same clients, each transaction a SELECT ... FOR UPDATE of one row + an INSERT")
    print("goal: a ratio of at least 0.5, and 0 anomalies")
    print()
    columns = ("clients", "n", "allocations/s", "p95 ms", "ceiling tx/s", "ceiling p95 ms", "ratio", "anomalies")
    widths = (7, 5, 13, 8, 12, 14, 5, 9)
    print("| " + " | ".join(f"{title:>{width}}" for title, width in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for clients, n, rate, p95, ceiling_rate, ceiling_p95, ratio, anomalies in randomisation_rows:
        print(
            f"| {clients:>7} | {n:>5} | {rate:>13.0f} | {p95:>8.1f} | {ceiling_rate:>12.0f} | {ceiling_p95:>14.1f} "
            f"| {ratio:>5.2f} | {anomalies:>9} |"
        )
    print()
    for line in randomisation_report:
        print(line)
    print()


if __name__ == "__main__":
    main()
