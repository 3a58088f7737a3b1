"""`make bench`: the families dataset streamed as CSV (reports/dataset_pages.py) at 2,500, 5,000 and 10,000 families.

PostgreSQL only. A site of its own (BDS) grows in bulk (the rows the services would write, without their audit
history): every family referred, screened (one in six not eligible), with a household of two parents and two
children; five in six consented (the rest declined), randomised to alternating arms over the last two years, with
a baseline and four follow-ups (recorded in the past, scheduled in the future), one in twenty withdrawn; every
intervention family in its intervention with a contact every ~10 days (not voided; the database keeps its daily
totals). Then a data manager downloads the families CSV of that site through the view (the streamed response read
to its end): wall time, rows, queries, and the peak of Python's memory while streaming (tracemalloc, in a second
pass: tracing slows the code). The goal is memory flat as the families grow, and queries that grow with the chunks
of 1,000 families (a constant number each), not with the families.

Called from bench/run.py, or alone: `python bench/dataset_export.py` in a fresh database. Nothing here is asserted
but the row count.
"""

import os
import random
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SIZES = tuple(int(n) for n in os.environ.get("BENCH_DATASET_SIZES", "2500,5000,10000").split(","))
SITE = "BDS"


def _fill(site, count: int, start_number: int, researcher, data_manager, rng: random.Random) -> None:
    """Families number start_number + 1 .. start_number + count at `site`, with everything the dataset reads."""
    from django.db import connection, transaction

    from bench.run import ALLOCATION_INSERT, visits_sql
    from families.models import (
        Child,
        Consent,
        Family,
        FamilyIdentity,
        FamilyStatus,
        Parent,
        ReferralSource,
        Screening,
        Withdrawal,
    )
    from followups.models import Assessment, AssessmentStatus, StopReason
    from followups.schedule import windows_from_settings
    from randomization.models import AllocationEntry, AllocationList, Arm
    from trial.dates import add_months
    from trial.dates import today as local_today
    from trial.models import TrialSettings
    from visits.models import Contact, InterventionPeriod

    trial_settings = TrialSettings.current()
    today = local_today()
    oslo = ZoneInfo("Europe/Oslo")
    with transaction.atomic():
        families, plans = [], []
        for i in range(count):
            number = start_number + i + 1
            randomised_on = today - timedelta(days=rng.randint(20, 730))
            eligible = number % 6 != 0
            consented = eligible and number % 7 != 0
            withdrawn = consented and number % 20 == 0
            status = (
                FamilyStatus.WITHDRAWN
                if withdrawn
                else FamilyStatus.RANDOMISED
                if consented
                else FamilyStatus.DECLINED
                if eligible
                else FamilyStatus.INELIGIBLE
            )
            families.append(
                Family(
                    site=site,
                    number=number,
                    study_id=Family.format_study_id(site.code, number),
                    referral_date=randomised_on - timedelta(days=60),
                    referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                    status=status,
                    registered_by=researcher,
                    registration_token=uuid.uuid4(),
                )
            )
            plans.append((randomised_on, eligible, consented, withdrawn))
        families = Family.objects.bulk_create(families, batch_size=2000)
        FamilyIdentity.objects.bulk_create(
            [FamilyIdentity(family=family, contact_name=f"Bench {family.study_id}") for family in families],
            batch_size=2000,
        )
        Parent.objects.bulk_create(
            [Parent(family=family, birth_year=year) for family in families for year in (1985, 1990)], batch_size=5000
        )
        Child.objects.bulk_create(
            [
                Child(family=family, birth_date=plan[0] - timedelta(days=365 * age))
                for family, plan in zip(families, plans, strict=True)
                for age in (4, 9)
            ],
            batch_size=5000,
        )
        Screening.objects.bulk_create(
            [
                Screening(
                    family=family,
                    screened_on=plan[0] - timedelta(days=40),
                    screened_by=researcher,
                    involved_with_child_welfare=True,
                    harmful_circumstances=plan[1],
                    struggle_areas=["finances", "housing"],
                    eligible=plan[1],
                    failed_criteria=[] if plan[1] else ["harmful_circumstances"],
                    submission_token=uuid.uuid4(),
                )
                for family, plan in zip(families, plans, strict=True)
            ],
            batch_size=2000,
        )
        Consent.objects.bulk_create(
            [
                Consent(
                    family=family,
                    decision="consented" if plan[2] else "declined",
                    decided_on=plan[0] - timedelta(days=21),
                    form_version="v1" if plan[2] else "",
                    obtained_by=researcher if plan[2] else None,
                    decline_reason="" if plan[2] else "not_interested",
                    recorded_by=researcher,
                    submission_token=uuid.uuid4(),
                )
                for family, plan in zip(families, plans, strict=True)
                if plan[1]
            ],
            batch_size=2000,
        )
        randomised = [(family, plan) for family, plan in zip(families, plans, strict=True) if plan[2]]
        allocation_list, _created = AllocationList.objects.get_or_create(
            site=site, defaults={"length": 100_000, "used": 0, "commitment": "0" * 64, "created_by": data_manager}
        )
        arms = [Arm.INTERVENTION if family.number % 2 else Arm.CONTROL for family, _plan in randomised]
        entries = AllocationEntry.objects.bulk_create(
            [
                AllocationEntry(allocation_list=allocation_list, position=family.number, sealed_arm=arm)
                for (family, _plan), arm in zip(randomised, arms, strict=True)
            ],
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                visits_sql(ALLOCATION_INSERT),
                [
                    (
                        family.pk,
                        entry.pk,
                        arm,
                        site.pk,
                        family.number,
                        researcher.pk,
                        datetime(plan[0].year, plan[0].month, plan[0].day, 12, tzinfo=oslo),
                    )
                    for (family, plan), entry, arm in zip(randomised, entries, arms, strict=True)
                ],
            )
        assessments, withdrawals, periods, contacts = [], [], [], []
        for (family, plan), arm in zip(randomised, arms, strict=True):
            randomised_on, withdrawn = plan[0], plan[3]
            withdrawn_on = randomised_on + timedelta(days=30) if withdrawn else None
            assessments.append(
                Assessment(
                    family=family,
                    months=0,
                    opens_on=randomised_on - timedelta(days=21),
                    target_on=randomised_on - timedelta(days=21),
                    status=AssessmentStatus.COMPLETED,
                    done_on=randomised_on - timedelta(days=14),
                    mode="home_visit",
                    questionnaires=["SDQ"],
                )
            )
            for window in windows_from_settings(randomised_on, trial_settings):
                if withdrawn_on is not None:
                    assessments.append(
                        Assessment(
                            family=family,
                            months=window.months,
                            opens_on=window.opens_on,
                            target_on=window.target_on,
                            closes_on=window.closes_on,
                            status=AssessmentStatus.STOPPED,
                            stopped_on=withdrawn_on,
                            stop_reason=StopReason.WITHDRAWAL,
                        )
                    )
                elif window.target_on < today:
                    assessments.append(
                        Assessment(
                            family=family,
                            months=window.months,
                            opens_on=window.opens_on,
                            target_on=window.target_on,
                            closes_on=window.closes_on,
                            status=AssessmentStatus.COMPLETED,
                            done_on=window.target_on,
                            mode="phone",
                            questionnaires=["SDQ", "PSI-SF"],
                        )
                    )
                else:
                    assessments.append(
                        Assessment(
                            family=family,
                            months=window.months,
                            opens_on=window.opens_on,
                            target_on=window.target_on,
                            closes_on=window.closes_on,
                        )
                    )
            if withdrawn_on is not None:
                withdrawals.append(
                    Withdrawal(
                        family=family,
                        withdrawn_on=withdrawn_on,
                        reason="family_request",
                        data_may_be_kept=True,
                        recorded_by=researcher,
                        submission_token=uuid.uuid4(),
                    )
                )
            if arm == Arm.INTERVENTION and withdrawn_on is None:
                start = randomised_on + timedelta(days=7)
                end = add_months(start, 12)
                ended = end < today
                periods.append(
                    InterventionPeriod(
                        family=family,
                        started_on=start,
                        planned_end_on=end,
                        ended_on=end if ended else None,
                        end_reason="completed" if ended else "",
                        ended_by=researcher if ended else None,
                    )
                )
                day = start
                while day <= min(end, today):
                    contacts.append(
                        Contact(
                            family=family,
                            author=researcher,
                            contact_date=day,
                            duration_quarters=rng.randint(4, 16),
                            kind="home_visit",
                            elements=["home_visitation", "parental_guidance"],
                            submission_token=uuid.uuid4(),
                        )
                    )
                    day += timedelta(days=rng.randint(5, 15))
        Assessment.objects.bulk_create(assessments, batch_size=5000)
        Withdrawal.objects.bulk_create(withdrawals, batch_size=2000)
        InterventionPeriod.objects.bulk_create(periods, batch_size=2000)
        Contact.objects.bulk_create(contacts, batch_size=5000)
        AllocationList.objects.filter(pk=allocation_list.pk).update(used=start_number + count)


def _download(client, site_pk: int) -> tuple[int, int]:
    """(rows, bytes) of the families CSV of the site, read to its end."""
    response = client.get(
        "/reports/datasets/", {"dataset": "families", "file_format": "csv", "values": "codes", "site": site_pk}
    )
    assert response.status_code == 200 and response.streaming, response.status_code
    size = lines = 0
    for piece in response.streaming_content:
        size += len(piece)
        lines += piece.count(b"\r\n")
    return lines - 1, size


def benchmark_dataset_export() -> list[str]:
    """Fill to each size, stream the families CSV; the table's lines."""
    from django.db import connection
    from django.test import Client

    from families.models import Family
    from trial.models import Site
    from trial.roles import Role
    from trial.tests.factories import UserFactory
    from visits.models import Contact

    rng = random.Random(11)  # noqa: S311 (made-up dates, reproducible)
    site = Site.objects.create(code=SITE, name="Bench datasets", expected_recruitment=1)
    researcher = UserFactory(username="bench-datasets-researcher", roles=[Role.RESEARCHER], sites=[site])
    data_manager = UserFactory(username="bench-datasets-data-manager", roles=[Role.DATA_MANAGER])
    client = Client()
    client.force_login(data_manager)
    lines = [
        "| families | contacts |  rows | seconds | queries | peak Python memory (MB) | CSV (MB) |",
        "|---------:|---------:|------:|--------:|--------:|------------------------:|---------:|",
    ]
    # Counted at the cursor: the test client's request_started resets Django's own query log mid-download.
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    filled = 0
    for size in SIZES:
        fill_started = time.perf_counter()
        _fill(site, size - filled, filled, researcher, data_manager, rng)
        filled = size
        fill_seconds = time.perf_counter() - fill_started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        families = Family.objects.filter(site=site).count()
        contacts = Contact.objects.filter(family__site=site).count()
        _download(client, site.pk)  # warm-up
        queries.clear()
        with connection.execute_wrapper(count):
            started = time.perf_counter()
            rows, csv_bytes = _download(client, site.pk)
            seconds = time.perf_counter() - started
        assert rows == families, (rows, families)
        tracemalloc.start()
        _download(client, site.pk)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        lines.append(
            f"| {families:>8} | {contacts:>8} | {rows:>5} | {seconds:>7.2f} | {len(queries):>7} "
            f"| {peak / 1e6:>23.1f} | {csv_bytes / 1e6:>8.1f} |"
        )
        print(f"  datasets bench: {size} families filled in {fill_seconds:.0f} s", flush=True)
    return [
        "families dataset, CSV streamed (one site's families; a data manager's download read to its end); goal: "
        "peak memory flat as families grow, queries growing only with the chunks of 1,000 families",
        "",
        *lines,
    ]


__all__ = ["benchmark_dataset_export"]


if __name__ == "__main__":  # on its own, in a fresh database: python bench/dataset_export.py (PostgreSQL)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.standalone import fresh_database

    fresh_database("The dataset export benchmark")
    print("\n".join(benchmark_dataset_export()))
