"""`make bench`: one reminder sweep (reminders.services.sweep) over a large trial, its time and its queries.

Three fresh sites (BRA, BRB, BRC), each with 3 outcome assessors and 4 researchers, get randomised families (their
randomisation dates spread over the last two years), each with its baseline done and four follow-ups scheduled
with the trial's windows (5 assessments per family), and one eligible family without a decision per 20 (consents
pending); bulk inserts, without the audit trail. The sweep runs for today with 1,000 families, then again after
the trial grew to 10,000 (50,000 assessments): the number of queries stays the same (it grows only with the
messages, by one insert per 1,000 rows), the time with the rows read and written. Each size is swept from an
empty outbox (a first sweep, or one after a week without: the last 7 days' stages are caught up), then as a day's
sweep after yesterday's, then again the same day (everything made already: nothing written). What the Family
Partner benchmark loaded before (intervention families, contacts) is in the same database and swept too (weekly
summaries, milestones).

Called from bench/run.py (PostgreSQL only); nothing here is asserted. Goal: under 5 s at 10,000 families.
"""

import os
import random
import time
import uuid
from datetime import date, timedelta

SITES = ("BRA", "BRB", "BRC")
SMALL, LARGE = (int(n) for n in os.environ.get("BENCH_SWEEP_SIZES", "1000,10000").split(","))


def _fill(count: int, sites, researcher, rng: random.Random, today: date) -> None:
    """`count` randomised families (5 assessments each) and count // 20 eligible ones, spread over the sites."""
    from django.db.models import Max

    from families.models import Family, FamilyStatus, ReferralSource, Screening
    from followups.models import Assessment, AssessmentMode, AssessmentStatus
    from followups.schedule import windows_from_settings
    from trial.models import TrialSettings

    trial_settings = TrialSettings.current()
    families, randomised_on = [], []
    eligible = count // 20
    numbers = {site.pk: Family.objects.filter(site=site).aggregate(last=Max("number"))["last"] or 0 for site in sites}
    for i in range(count + eligible):
        site = sites[i % len(sites)]
        numbers[site.pk] += 1
        number = numbers[site.pk]
        day = today - timedelta(days=rng.randint(0, 730))
        families.append(
            Family(
                site=site,
                number=number,
                study_id=Family.format_study_id(site.code, number),
                referral_date=day - timedelta(days=60),
                referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                status=FamilyStatus.RANDOMISED if i < count else FamilyStatus.ELIGIBLE,
                registered_by=researcher,
                registration_token=uuid.uuid4(),
            )
        )
        randomised_on.append(day)
    families = Family.objects.bulk_create(families, batch_size=2000)
    assessments, screenings = [], []
    for family, day in zip(families, randomised_on, strict=True):
        if family.status == FamilyStatus.ELIGIBLE:
            screenings.append(
                Screening(
                    family=family,
                    screened_on=today - timedelta(days=rng.randint(10, 25)),
                    screened_by=researcher,
                    involved_with_child_welfare=True,
                    harmful_circumstances=True,
                    struggle_areas=["finances", "housing"],
                    eligible=True,
                    submission_token=uuid.uuid4(),
                )
            )
            continue
        consented = day - timedelta(days=21)
        assessments.append(
            Assessment(
                family=family,
                months=0,
                opens_on=consented,
                target_on=consented,
                status=AssessmentStatus.COMPLETED,
                done_on=consented + timedelta(days=7),
                mode=AssessmentMode.HOME_VISIT,
            )
        )
        assessments += [
            Assessment(
                family=family,
                months=window.months,
                opens_on=window.opens_on,
                target_on=window.target_on,
                closes_on=window.closes_on,
            )
            for window in windows_from_settings(day, trial_settings)
        ]
    Assessment.objects.bulk_create(assessments, batch_size=5000)
    Screening.objects.bulk_create(screenings, batch_size=2000)


def _sweep_once(today: date) -> tuple[float, int, int]:
    """(seconds, queries, messages made) of one sweep for `today`."""
    from bench.run import counting_queries
    from reminders import services

    with counting_queries() as queries:
        started = time.perf_counter()
        result = services.sweep(today)
        seconds = time.perf_counter() - started
    return seconds, len(queries), result.total


def benchmark_reminder_sweep() -> list[str]:
    """Fill, sweep at 1,000 and at 10,000 families; the table's lines."""
    from django.db import transaction

    from families.models import Family
    from followups.models import Assessment
    from notifications.models import Message
    from reminders import services
    from trial.dates import today as local_today
    from trial.models import Site
    from trial.roles import Role
    from trial.tests.factories import UserFactory

    rng = random.Random(10)  # noqa: S311 (made-up dates, reproducible)
    today = local_today()
    sites = [Site.objects.create(code=code, name=f"Bench reminders {code}", expected_recruitment=1) for code in SITES]
    researcher = UserFactory(username="bench-reminders-researcher", roles=[Role.RESEARCHER], sites=sites)
    for site in sites:
        for i in range(3):
            UserFactory(username=f"bench-assessor-{site.code}-{i}", roles=[Role.OUTCOME_ASSESSOR], sites=[site])
        for i in range(3):
            UserFactory(username=f"bench-researcher-{site.code}-{i}", roles=[Role.RESEARCHER], sites=[site])

    ours = [*services.DAILY_KINDS, *services.WEEKLY_KINDS]
    lines = [
        "| families | assessments | sweep | messages made | seconds | queries |",
        "|---------:|------------:|:------|--------------:|--------:|--------:|",
    ]
    filled = 0
    for size in (SMALL, LARGE):
        with transaction.atomic():
            _fill(size - filled, sites, researcher, rng, today)
        filled = size
        families = Family.objects.filter(site__in=sites).count()
        assessments = Assessment.objects.filter(family__site__in=sites).count()
        # From an empty outbox (a first sweep, or after a week without one: every stage of the last 7 days);
        # then a day's sweep after yesterday's; then the same sweep again (everything made: nothing written).
        Message.objects.filter(kind__in=ours).delete()
        runs = [("first (7 days caught up)", _sweep_once(today))]
        Message.objects.filter(kind__in=ours).delete()
        _sweep_once(today - timedelta(days=1))
        runs.append(("daily (after yesterday's)", _sweep_once(today)))
        runs.append(("again the same day", _sweep_once(today)))
        assert runs[-1][1][2] == 0, "a second sweep on the same day makes nothing"
        for label, (seconds, queries, made) in runs:
            lines.append(
                f"| {families:>8} | {assessments:>11} | {label:<25} | {made:>13} | {seconds:>7.2f} | {queries:>7} |"
            )
    return [
        "reminder sweep (reminders.services.sweep for today): the daily and weekly reminders of every family in "
        "the database (these sites and the Family Partner benchmark's); goal: under 5 s, queries independent of "
        "the number of families",
        "",
        *lines,
    ]


__all__ = ["benchmark_reminder_sweep"]


if __name__ == "__main__":  # on its own, in a fresh database: python bench/reminder_sweep.py (PostgreSQL)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.standalone import fresh_database

    fresh_database("The reminder sweep benchmark")
    print("\n".join(benchmark_reminder_sweep()))
