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
  list's `used`, arms as the entries say, the list's verification); anything wrong is an anomaly;
- the Family Partner's pages (issue 4; PostgreSQL only, the contacts are loaded with one INSERT ... SELECT):
  VISIT_SITES sites with PARTNERS Family Partners, VISIT_FAMILIES intervention families (each partner's caseload
  full, a few families waiting) and CONTACTS contacts over the last ~18 months, written in bulk (rows the
  services would write, without their audit history). Server time of the partner's home page, the contact form
  (GET and a valid POST), a family's work page, the caseload and the families-by-weeks table (a researcher of
  one site and the PI). The goal is a p95 under 150 ms. At the end the database's own counts are checked: each
  family's hours per day against its contacts, each partner's active families against their assignments;
- the API's randomise and family-list calls at 1, 4 and 16 clients beside the same work through the pages, over
  HTTP to a live server (PostgreSQL only; bench/api.py);
- the reminder sweep (PostgreSQL only; bench/reminder_sweep.py): one sweep at 1,000 and at 10,000 families
  (50,000 assessments), its time and queries;
- the feasibility report's figures (PostgreSQL only; bench/report.py): 10,000 randomised families, 50,000
  assessments and 500,000 contacts at three sites of their own, beside one hand-written SQL query of the flow.
- the families dataset streamed as CSV (PostgreSQL only; bench/dataset_export.py) at 2,500, 5,000 and 10,000
  families: time, rows, queries and peak Python memory.
Times are wall-clock on this machine; nothing here is asserted.
"""

import contextlib
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
os.environ.setdefault("TRIAL_ENV", "test")  # a fixed encryption key; never touches development data

FAMILIES = int(os.environ.get("BENCH_FAMILIES", "3000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
ALLOCATIONS = int(os.environ.get("BENCH_ALLOCATIONS", "400"))
RANDOMISING_CLIENTS = (1, 4, 16)
PARTNERS = int(os.environ.get("BENCH_PARTNERS", "200"))
VISIT_FAMILIES = int(os.environ.get("BENCH_VISIT_FAMILIES", "1000"))
CONTACTS = int(os.environ.get("BENCH_CONTACTS", "500000"))
VISIT_SITES = 4
PAGE_REQUESTS = max(20, REQUESTS // 4)


@contextlib.contextmanager
def counting_queries():
    """Django's CaptureQueriesContext with the connection's query log emptied first: the log keeps only the last
    9,000 queries, and once full it counts none (a benchmark after the others read 0 queries)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        yield queries


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
    from randomization.lists import allocation_list_verify
    from randomization.models import Allocation, AllocationList

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
    from randomization import lists
    from randomization import services as randomisation
    from randomization.tests.factories import ready_to_randomise

    with connection.cursor() as cursor:
        for statement in CEILING_TABLES:
            cursor.execute(statement)

    started = time.perf_counter()
    for site in sites:
        for _ in range(ALLOCATIONS):
            # With its baseline recorded: the trial's default rule before randomising (issue 10).
            ready_to_randomise(site, by=researcher)
    fill_seconds = time.perf_counter() - started

    rows, report = [], []
    for clients, site in zip(RANDOMISING_CLIENTS, sites, strict=True):
        per_client = max(1, min(ALLOCATIONS, lists.MAX_LIST_LENGTH) // clients)
        # Longer than the run needs, so that no "running low" alert is claimed mid-run.
        lists.allocation_list_generate(
            site=site, generated_by=data_manager, length=min(lists.MAX_LIST_LENGTH, 2 * per_client * clients)
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


def page_row(label: str, request, expected_status: int = 200) -> tuple:
    """A table row for one page: server time of `request()` (a test-client call) over PAGE_REQUESTS calls after
    one warm-up, and the queries of one more call."""

    request()  # warm up
    times = []
    for _ in range(PAGE_REQUESTS):
        t0 = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - t0)
        assert response.status_code == expected_status, (label, response.status_code)
    with counting_queries() as queries:
        request()
    return (label, len(times), "", statistics.median(times) * 1000, percentile(times, 0.95) * 1000, str(len(queries)))


# Contacts: a family's days in its intervention, each taken up to `repeats` times, in random order, the first
# CONTACTS of them, written day by day as they would have been logged (the tables' rows in the order a real
# database has them). {contact} etc. are the models' tables; values are parameters.
CONTACTS_INSERT = """
INSERT INTO {contact} (family_id, author_id, contact_date, duration_quarters, kind, elements, notes, recorded_at,
                       submission_token)
SELECT family_id, author_id, day,
       1 + floor(random() * %(longest)s)::int,
       (%(kinds)s::text[])[1 + floor(random() * cardinality(%(kinds)s::text[]))::int],
       (%(elements)s::text[])[1 + floor(random() * cardinality(%(elements)s::text[]))::int]::jsonb,
       CASE WHEN random() < %(notes_share)s
            THEN (%(notes)s::text[])[1 + floor(random() * cardinality(%(notes)s::text[]))::int] ELSE '' END,
       (day + time '19:00') AT TIME ZONE 'Europe/Oslo',
       gen_random_uuid()
FROM (
    SELECT family_day.family_id, family_day.author_id, family_day.day
    FROM bench_family_day family_day CROSS JOIN generate_series(1, %(repeats)s)
    ORDER BY random()
    LIMIT %(contacts)s
) AS chosen
ORDER BY day
"""
# Every day of every assignment (up to the day before an ended one ended: that day is the next partner's).
FAMILY_DAYS = """
CREATE TEMPORARY TABLE bench_family_day AS
SELECT assignment.family_id, partner.user_id AS author_id, day::date AS day
FROM {assignment} assignment
JOIN {partner} partner ON partner.id = assignment.partner_id
CROSS JOIN LATERAL generate_series(
    assignment.started_on::timestamp, COALESCE(assignment.ended_on - 1, %(today)s::date)::timestamp, interval '1 day'
) AS day
WHERE partner.site_id = ANY(%(site_ids)s)
"""
# Families whose hours per day differ from the sum of their contacts; partners whose active families differ
# from their assignments that have not ended.
DAY_TOTALS_WRONG = """
SELECT count(*) FROM (
    SELECT family_id, contact_date AS day, sum(duration_quarters) AS quarters FROM {contact}
    WHERE voided_at IS NULL GROUP BY 1, 2
) AS contacts
FULL JOIN {contactday} AS days USING (family_id, day)
WHERE COALESCE(contacts.quarters, 0) <> COALESCE(days.quarters, 0)
"""
ACTIVE_FAMILIES_WRONG = """
SELECT count(*) FROM {partner} partner
LEFT JOIN (SELECT partner_id, count(*) AS n FROM {assignment} WHERE ended_on IS NULL GROUP BY partner_id) AS active
    ON active.partner_id = partner.id
WHERE partner.active_families <> COALESCE(active.n, 0)
"""
ALLOCATION_INSERT = """
INSERT INTO {allocation} (family_id, entry_id, arm, site_id, position, randomised_by_id, randomised_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


def visits_sql(statement: str) -> str:
    """`statement` with the models' tables in place of {contact}, {contactday}, {assignment}, {partner} and
    {allocation}."""
    from randomization.models import Allocation
    from visits.models import Assignment, Contact, ContactDay, PartnerProfile

    tables = {
        "contact": Contact,
        "contactday": ContactDay,
        "assignment": Assignment,
        "partner": PartnerProfile,
        "allocation": Allocation,
    }
    return statement.format(**{name: model._meta.db_table for name, model in tables.items()})


def fill_visits(data_manager) -> dict:
    """VISIT_SITES fresh sites with PARTNERS Family Partners, VISIT_FAMILIES intervention families (randomised,
    assigned, in their intervention since up to ~18 months; one in ten changed partner halfway), five families
    per site waiting for a partner, and CONTACTS contacts. Bulk writes; what the pages need, not the audit trail.
    Returns the users and numbers the measurements need."""
    import math
    import random

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import DatabaseError, connection, transaction

    from families.models import Family, FamilyIdentity, FamilyStatus, ReferralSource
    from randomization.models import AllocationEntry, AllocationList, Arm
    from trial.encryption import fernet
    from trial.models import Site, TrialSettings
    from trial.roles import Role
    from trial.tests.factories import UserFactory
    from visits import weeks
    from visits.models import (
        MAX_CONTACT_QUARTERS,
        MAX_DAY_QUARTERS,
        Assignment,
        ContactKind,
        Element,
        InterventionPeriod,
        PartnerProfile,
    )

    trial_settings = TrialSettings.current()
    capacity = trial_settings.partner_capacity
    if capacity * PARTNERS < VISIT_FAMILIES:
        raise SystemExit(f"BENCH_VISIT_FAMILIES: at most {capacity} families per partner, {capacity * PARTNERS} in all")
    rng = random.Random(4)  # noqa: S311 (made-up dates, reproducible)
    oslo = ZoneInfo("Europe/Oslo")
    today = weeks.today()
    started = time.perf_counter()
    with transaction.atomic():
        sites = [
            Site.objects.create(code=f"BV{chr(ord('A') + i)}", name=f"Bench visits {i + 1}", expected_recruitment=1)
            for i in range(VISIT_SITES)
        ]
        researcher = UserFactory(username="bench-visits-researcher", roles=[Role.RESEARCHER], sites=sites[:1])
        principal_investigator = UserFactory(username="bench-pi", roles=[Role.PRINCIPAL_INVESTIGATOR])
        users = User.objects.bulk_create(
            User(
                username=f"bench-partner-{i:04d}",
                first_name="Partner",
                last_name=f"{i:04d}",
                password=make_password(None),
            )
            for i in range(PARTNERS)
        )
        group = Group.objects.get_or_create(name=Role.FAMILY_PARTNER)[0]
        User.groups.through.objects.bulk_create(User.groups.through(user=user, group=group) for user in users)
        Site.members.through.objects.bulk_create(
            Site.members.through(site=sites[i % VISIT_SITES], user=user) for i, user in enumerate(users)
        )
        partners = PartnerProfile.objects.bulk_create(
            PartnerProfile(user=user, site=sites[i % VISIT_SITES], capacity=capacity) for i, user in enumerate(users)
        )

        # Family i is partner i % PARTNERS's (so at that partner's site); then five families per site waiting.
        numbers = dict.fromkeys(range(VISIT_SITES), 0)
        families: list[Family] = []
        starts: list[date] = []  # of the intervention families' interventions
        randomised: list[datetime] = []
        site_indexes = [i % PARTNERS % VISIT_SITES for i in range(VISIT_FAMILIES)]
        site_indexes += [site_index for site_index in range(VISIT_SITES) for _ in range(5)]
        for i, site_index in enumerate(site_indexes):
            numbers[site_index] += 1
            site = sites[site_index]
            if i < VISIT_FAMILIES:
                starts.append(today - timedelta(days=rng.randint(14, 540)))
                day = starts[-1] - timedelta(days=rng.randint(3, 21))
            else:
                day = today - timedelta(days=rng.randint(1, 30))
            families.append(
                Family(
                    site=site,
                    number=numbers[site_index],
                    study_id=Family.format_study_id(site.code, numbers[site_index]),
                    referral_date=day - timedelta(days=40),
                    referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                    status=FamilyStatus.RANDOMISED,
                    registered_by=researcher,
                    registration_token=uuid.uuid4(),
                )
            )
            randomised.append(datetime(day.year, day.month, day.day, 12, tzinfo=oslo))
        families = Family.objects.bulk_create(families)
        for site_index, site in enumerate(sites):
            Site.objects.filter(pk=site.pk).update(last_family_number=numbers[site_index])
        FamilyIdentity.objects.bulk_create(
            FamilyIdentity(family=family, contact_name=f"Bench Forelder {family.study_id}", phone="91234567")
            for family in families
        )

        # Each site's list, as long as its families; the allocations are written as randomisation writes them
        # (with their own dates, which the model's auto_now_add would not allow).
        site_lists = {
            site.pk: AllocationList.objects.create(
                site=site, length=numbers[i], used=numbers[i], commitment="0" * 64, created_by=data_manager
            )
            for i, site in enumerate(sites)
        }
        entries = AllocationEntry.objects.bulk_create(
            AllocationEntry(
                allocation_list=site_lists[family.site_id], position=family.number, sealed_arm=Arm.INTERVENTION
            )
            for family in families
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                visits_sql(ALLOCATION_INSERT),
                [
                    (family.pk, entry.pk, Arm.INTERVENTION, family.site_id, family.number, researcher.pk, at)
                    for family, entry, at in zip(families, entries, randomised, strict=True)
                ],
            )

        InterventionPeriod.objects.bulk_create(
            InterventionPeriod(
                family=family,
                started_on=start,
                planned_end_on=weeks.add_months(start, trial_settings.intervention_expected_months),
            )
            for family, start in zip(families[:VISIT_FAMILIES], starts, strict=True)
        )
        site_partners = [partners[s::VISIT_SITES] for s in range(VISIT_SITES)]
        assignments = []
        for i, (family, start) in enumerate(zip(families[:VISIT_FAMILIES], starts, strict=True)):
            partner = partners[i % PARTNERS]
            since = start
            if i % 10 == 0 and (today - start).days > 60 and len(site_partners[i % PARTNERS % VISIT_SITES]) > 1:
                others = [p for p in site_partners[i % PARTNERS % VISIT_SITES] if p.pk != partner.pk]
                since = start + timedelta(days=(today - start).days // 2)
                assignments.append(
                    Assignment(
                        family=family,
                        partner=rng.choice(others),
                        started_on=start,
                        ended_on=since,
                        end_reason="Bench: changed partner",
                        assigned_by=researcher,
                    )
                )
            assignments.append(Assignment(family=family, partner=partner, started_on=since, assigned_by=researcher))
        # The database counts each partner's active families as the rows go in (the assignment trigger).
        Assignment.objects.bulk_create(assignments)

        # Contacts: as many per family-day as needed to reach CONTACTS, each short enough that a day never
        # passes 24 hours (with room for the POSTs measured below), long enough for about the weekly target.
        with connection.cursor() as cursor:
            cursor.execute(visits_sql(FAMILY_DAYS), {"today": today, "site_ids": [site.pk for site in sites]})
            cursor.execute("SELECT count(*) FROM bench_family_day")
            family_days = cursor.fetchone()[0]
            repeats = math.ceil(CONTACTS / family_days)
            if repeats > MAX_DAY_QUARTERS - 16:
                raise SystemExit(f"BENCH_CONTACTS: {CONTACTS} contacts do not fit in {family_days} family-days")
            # Durations 1..longest quarter-hours, whose mean gives about the weekly target.
            mean = float(trial_settings.weekly_hours_target) * weeks.QUARTERS_PER_HOUR * family_days / 7 / CONTACTS
            longest = max(1, min(round(2 * mean - 1), MAX_CONTACT_QUARTERS, (MAX_DAY_QUARTERS - 16) // repeats))
            notes = [
                fernet().encrypt(f"Bench note {n}: a home visit, talked about the week.".encode()).decode()
                for n in range(16)
            ]
            elements = [
                f'["{Element.HOME_VISITATION}", "{Element.PARENTAL_GUIDANCE}"]',
                f'["{Element.COORDINATION}"]',
                f'["{Element.ECOLOGICAL}", "{Element.THERAPEUTIC_RELATIONSHIP}"]',
                f'["{Element.HOME_VISITATION}", "{Element.THERAPEUTIC_RELATIONSHIP}", "{Element.PARENTAL_GUIDANCE}"]',
            ]
            contacts_started = time.perf_counter()
            # The counting trigger adds each contact to its family's day, as for a contact logged in the app.
            cursor.execute(
                visits_sql(CONTACTS_INSERT),
                {
                    "longest": longest,
                    "kinds": list(ContactKind.values),
                    "elements": elements,
                    "notes_share": 0.1,
                    "notes": notes,
                    "repeats": repeats,
                    "contacts": CONTACTS,
                },
            )
            cursor.execute("DROP TABLE bench_family_day")
            contacts_seconds = time.perf_counter() - contacts_started
    with connection.cursor() as cursor:
        # As autovacuum would have left a database in use; and the load's writes flushed, not in what follows.
        cursor.execute("VACUUM ANALYZE")
        with contextlib.suppress(DatabaseError):  # needs a superuser (or pg_checkpoint); else flushed later
            cursor.execute("CHECKPOINT")
    profile = PartnerProfile.objects.filter(site=sites[0], active_families=capacity).first()
    assert profile is not None, "a partner of the first site has a full caseload"
    return {
        "researcher": researcher,
        "principal_investigator": principal_investigator,
        "partner": profile,
        "seconds": time.perf_counter() - started,
        "contacts_seconds": contacts_seconds,
        "family_days": family_days,
        "longest": longest,
    }


def benchmark_visits(data_manager) -> tuple[list[tuple], str]:
    """The rows of the Family Partner's pages, and a line on the data and its counts."""
    import itertools
    import math

    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse

    from families.models import Family
    from visits import weeks
    from visits.models import Contact, ContactKind, Element
    from visits.views import CONTACTS_PER_PAGE

    filled = fill_visits(data_manager)
    partner = filled["partner"]
    families = list(
        Family.objects.filter(assignments__partner=partner, assignments__ended_on__isnull=True)
        .annotate(contacts_logged=Count("contacts"))
        .order_by("-contacts_logged")
    )
    family = families[0]
    partner_client, researcher_client, pi_client = Client(), Client(), Client()
    partner_client.force_login(partner.user)
    researcher_client.force_login(filled["researcher"])
    pi_client.force_login(filled["principal_investigator"])
    new_contact = reverse("visits:contact_new", args=[family.study_id])
    family_page = reverse("visits:family", args=[family.study_id])
    last_page = math.ceil(family.contacts_logged / CONTACTS_PER_PAGE)
    posts = itertools.count()

    def post_contact():
        n = next(posts)
        response = partner_client.post(
            reverse("visits:contact_new", args=[families[n % len(families)].study_id]),
            {
                "token": str(uuid.uuid4()),
                "contact_date": (weeks.today() - timedelta(days=n // len(families) % 14)).isoformat(),
                "duration_quarters": "1",
                "kind": ContactKind.HOME_VISIT,
                "elements": [Element.HOME_VISITATION, Element.PARENTAL_GUIDANCE],
                "notes": "Talked about the week ahead.",
            },
        )
        partner_client.cookies.pop("messages", None)  # each POST alike: no pile of unread messages
        return response

    rows = [
        page_row("partner: my families (5)", lambda: partner_client.get(reverse("visits:partner_home"))),
        page_row("partner: contact form", lambda: partner_client.get(new_contact)),
        page_row("partner: log a contact (POST)", post_contact, expected_status=302),
        page_row(f"partner: family work, {family.contacts_logged} contacts", lambda: partner_client.get(family_page)),
        page_row(
            f"researcher: family work, page {last_page}",
            lambda: researcher_client.get(f"{family_page}?page={last_page}"),
        ),
        page_row("researcher: caseload (1 site)", lambda: researcher_client.get(reverse("visits:caseload"))),
        page_row("PI: caseload (all sites)", lambda: pi_client.get(reverse("visits:caseload"))),
        page_row("researcher: weeks table (1 site)", lambda: researcher_client.get(reverse("visits:dose"))),
        page_row("PI: weeks table (all), page 1", lambda: pi_client.get(reverse("visits:dose"))),
    ]
    with connection.cursor() as cursor:
        cursor.execute(visits_sql(DAY_TOTALS_WRONG))
        days_wrong = cursor.fetchone()[0]
        cursor.execute(visits_sql(ACTIVE_FAMILIES_WRONG))
        partners_wrong = cursor.fetchone()[0]
    summary = (
        f"Family Partner pages: {VISIT_SITES} sites, {PARTNERS} partners, {VISIT_FAMILIES} intervention families "
        f"(+{5 * VISIT_SITES} waiting), {Contact.objects.count()} contacts on {filled['family_days']} family-days "
        f"(up to {filled['longest']} quarter-hours each), filled in {filled['seconds']:.0f} s "
        f"(contacts {filled['contacts_seconds']:.0f} s); goal: p95 under 150 ms\n"
        f"database counts after the runs: {days_wrong} family-days whose hours differ from their contacts, "
        f"{partners_wrong} partners whose active families differ from their assignments"
    )
    return rows, summary


def print_table(rows: list[tuple]) -> None:
    """The benchmarks' main table: what, n, rate, median ms, p95 ms, queries."""
    header = ("what", "n", "rate", "median ms", "p95 ms", "queries")
    print(f"| {header[0]:<36} | {header[1]:>5} | {header[2]:>7} | {header[3]:>9} | {header[4]:>8} | {header[5]:>7} |")
    print(f"|{'-' * 38}|{'-' * 7}|{'-' * 9}|{'-' * 11}|{'-' * 10}|{'-' * 9}|")
    for what, n, rate, median, p95, query_count in rows:
        print(f"| {what:<36} | {n:>5} | {rate:>7} | {median:>9.1f} | {p95:>8.1f} | {query_count:>7} |")


def main() -> None:
    url = _database_url()
    _recreate_database(url)
    os.environ["DATABASE_URL"] = url

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

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
        rows.append(page_row(label, lambda path=path: client.get(path)))

    family_count = Family.objects.count()
    postgres = connection.vendor == "postgresql"
    if postgres:
        # Before the randomisation runs: the hundreds of families they randomise would all wait for a Family
        # Partner on the PI's caseload, which no trial has.
        visits_rows, visits_summary = benchmark_visits(data_manager)
        rows += visits_rows
        randomisation_rows, randomisation_report, randomisation_fill = benchmark_randomisation(
            randomising_sites, randomiser, data_manager
        )
        from bench.api import benchmark_api

        api_rows, api_lines = benchmark_api(sites, data_manager)
        rows += api_rows
        from bench.reminder_sweep import benchmark_reminder_sweep

        reminder_lines = benchmark_reminder_sweep()
        from bench.dataset_export import benchmark_dataset_export

        dataset_lines = benchmark_dataset_export()
    from bench.followups_grid import benchmark_followups_grid

    followups_rows, followups_summary = benchmark_followups_grid()
    rows += followups_rows
    from bench.report import benchmark_report

    report_rows, report_lines = benchmark_report()
    rows += report_rows

    print()
    print(
        f"database: {connection.vendor} ({url.split('@')[-1]}), {family_count} families "
        f"(filled in {fill_seconds:.0f} s); study numbers at {site.code} gapless after the runs: {gapless}"
    )
    print(visits_summary if postgres else "Family Partner pages: need PostgreSQL (the contacts are loaded in SQL)")
    print(followups_summary)
    for line in report_lines:
        print(line)
    print()
    print_table(rows)
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
    for line in api_lines:
        print(line)
    print()
    for line in reminder_lines:
        print(line)
    print()
    for line in dataset_lines:
        print(line)
    print()


if __name__ == "__main__":
    main()
