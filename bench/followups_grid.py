"""The follow-up status grid at scale (issue 10), for `make bench` (bench/run.py calls `benchmark_followups_grid`).

PostgreSQL only: GRID_FAMILIES randomised families at a site of their own, with baselines and 3-, 6-, 12- and
18-month assessments (5 per family, 50,000 by default), written in bulk (the rows the services would write, without
their audit history): randomised over the last two years, so that every state is there (recorded outcomes in the
past, overdue ones, open, closing soon, not yet open). Then the server time of the grid (page 1, a later page, a
state filter, the PI over every site) and of an assessor's worklist, over GRID_REQUESTS requests after one warm-up,
and each page's queries. The goal is a p95 under 150 ms with queries independent of the number of families.
"""

import os
import statistics
import time
import uuid
from datetime import timedelta

GRID_FAMILIES = int(os.environ.get("BENCH_GRID_FAMILIES", "10000"))
GRID_REQUESTS = int(os.environ.get("BENCH_GRID_REQUESTS", "20"))


def _page_row(label: str, request) -> tuple:

    from bench.run import counting_queries, percentile

    request()  # warm up
    times = []
    for _ in range(GRID_REQUESTS):
        t0 = time.perf_counter()
        response = request()
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (label, response.status_code)
    with counting_queries() as queries:
        request()
    return (label, len(times), "", statistics.median(times) * 1000, percentile(times, 0.95) * 1000, str(len(queries)))


def fill_followups() -> dict:
    """A site, its assessor, GRID_FAMILIES randomised families and their assessments, in bulk."""
    import random

    from django.contrib.auth.models import User
    from django.db import transaction

    from families.models import Family, FamilyStatus, ReferralSource
    from followups.models import Assessment, AssessmentStatus
    from followups.schedule import baseline_window, windows_from_settings
    from trial.dates import today as local_today
    from trial.models import Site, TrialSettings
    from trial.roles import Role
    from trial.tests.factories import UserFactory

    rng = random.Random(10)  # noqa: S311 (made-up dates, reproducible)
    trial_settings = TrialSettings.current()
    today = local_today()
    started = time.perf_counter()
    with transaction.atomic():
        site = Site.objects.create(code="BFU", name="Bench follow-up", expected_recruitment=1)
        registrar = User.objects.create(username="bench-followups-registrar")
        assessor = UserFactory(username="bench-assessor", roles=[Role.OUTCOME_ASSESSOR], sites=[site])
        principal_investigator = UserFactory(username="bench-followups-pi", roles=[Role.PRINCIPAL_INVESTIGATOR])
        families = Family.objects.bulk_create(
            (
                Family(
                    site=site,
                    number=number,
                    study_id=Family.format_study_id(site.code, number),
                    referral_date=today - timedelta(days=800),
                    referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                    status=FamilyStatus.RANDOMISED,
                    registered_by=registrar,
                    registration_token=uuid.uuid4(),
                )
                for number in range(1, GRID_FAMILIES + 1)
            ),
            batch_size=2000,
        )
        assessments = []
        for family in families:
            randomised_on = today - timedelta(days=rng.randint(0, 730))
            consented_on = randomised_on - timedelta(days=rng.randint(3, 20))
            baseline = baseline_window(consented_on)
            assessments.append(
                Assessment(
                    family=family,
                    months=0,
                    opens_on=baseline.opens_on,
                    target_on=baseline.target_on,
                    closes_on=randomised_on,
                    status=AssessmentStatus.COMPLETED,
                    done_on=consented_on,
                    mode="home_visit",
                    questionnaires=["SDQ"],
                )
            )
            for window in windows_from_settings(randomised_on, trial_settings):
                row = Assessment(
                    family=family,
                    months=window.months,
                    opens_on=window.opens_on,
                    target_on=window.target_on,
                    closes_on=window.closes_on,
                )
                closes_on = window.closes_on or today
                if closes_on < today and rng.random() < 0.85:
                    outcome = rng.choice(["completed"] * 8 + ["partly", "missed", "refused"])
                    row.status = outcome
                    row.done_on = window.target_on if outcome != "missed" else closes_on
                    row.mode = "phone" if outcome in ("completed", "partly") else ""
                    row.questionnaires = ["SDQ"] if outcome in ("completed", "partly") else []
                    row.reason = "not_reached" if outcome == "missed" else ""
                elif closes_on >= today and window.opens_on <= today + timedelta(days=30) and rng.random() < 0.3:
                    row.booked_on = today + timedelta(days=rng.randint(0, 14))
                assessments.append(row)
        Assessment.objects.bulk_create(assessments, batch_size=5000)
    return {
        "site": site,
        "assessor": assessor,
        "pi": principal_investigator,
        "families": len(families),
        "assessments": len(assessments),
        "fill_seconds": time.perf_counter() - started,
    }


def benchmark_followups_grid() -> tuple[list[tuple], str]:
    """The rows of the follow-up pages (the table format of bench/run.py), and a line on the data."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    if connection.vendor != "postgresql":
        return [], "Follow-up grid: needs PostgreSQL (the assessments are loaded in bulk there)"
    filled = fill_followups()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    assessor_client, pi_client = Client(), Client()
    assessor_client.force_login(filled["assessor"])
    pi_client.force_login(filled["pi"])
    grid = reverse("followups:grid")
    rows = [
        _page_row("follow-up grid, page 1 (assessor)", lambda: assessor_client.get(grid)),
        _page_row("follow-up grid, page 50", lambda: assessor_client.get(grid, {"page": 50})),
        _page_row("follow-up grid, overdue only", lambda: assessor_client.get(grid, {"state": "overdue"})),
        _page_row("follow-up grid, PI, all sites", lambda: pi_client.get(grid)),
        _page_row("assessor's worklist", lambda: assessor_client.get(reverse("followups:worklist"))),
    ]
    summary = (
        f"Follow-up grid: {filled['families']} families, {filled['assessments']} assessments at {filled['site'].code} "
        f"(filled in {filled['fill_seconds']:.0f} s); goal: p95 under 150 ms"
    )
    return rows, summary


if __name__ == "__main__":  # on its own, in a fresh database: python bench/followups_grid.py (PostgreSQL)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.standalone import fresh_database

    fresh_database("The follow-up grid benchmark")
    from bench.run import print_table

    bench_rows, line = benchmark_followups_grid()
    print(line)
    print_table(bench_rows)
