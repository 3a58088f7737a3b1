"""The feasibility report's figures at scale (issue 11), for `make bench` (bench/run.py calls `benchmark_report`).

PostgreSQL only. Three fresh sites (BXA, BXB, BXC) get REPORT_FAMILIES randomised families (1:1, randomised over the
last two years) with their baseline and 3-, 6-, 12- and 18-month assessments (5 per family: 50,000 by default;
recorded ones with the assessor's guess), REPORT_EXCLUDED more families referred and screened but not randomised
(not eligible, declined, awaiting a decision, consented and waiting, withdrawn), partners for the intervention
families, their intervention periods and assignments, REPORT_CONTACTS contacts (500,000), withdrawals and losses:
bulk writes of the rows the services would write, without their audit history.

Then `reports.figures.build_report` for the three sites (in `make bench` the database also holds the other
benchmarks' families, which the report of "the whole trial" would count too; run this file on its own for a
database of only these) and for one site, REPORT_RUNS times after a warm-up: median, p95 and queries. Beside them
the floor: ONE hand-written SQL query that computes the flow's counts (assessed, excluded by branch, randomised,
allocated, received, assessed at each time point, lost and withdrawn, per arm), and the ratio of the two.
Goal: figures within 2 s and within 3 x the floor. Then the PDF, the Excel workbook and the CSV zip as a download
makes them (the figures, then the file); goal within 5 s. Nothing here is asserted.
"""

import os
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

REPORT_FAMILIES = int(os.environ.get("BENCH_REPORT_FAMILIES", "10000"))
REPORT_EXCLUDED = int(os.environ.get("BENCH_REPORT_EXCLUDED", "2000"))
REPORT_CONTACTS = int(os.environ.get("BENCH_REPORT_CONTACTS", "500000"))
REPORT_RUNS = int(os.environ.get("BENCH_REPORT_RUNS", "7"))
SITE_CODES = ("BXA", "BXB", "BXC")


def fill_report() -> dict:
    """The three sites' families, screenings, consents, allocations, assessments, guesses, partners, interventions,
    contacts, withdrawals and losses, in bulk."""
    import math

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from bench.run import ALLOCATION_INSERT, CONTACTS_INSERT, FAMILY_DAYS, visits_sql
    from families.models import (
        Consent,
        Criterion,
        DeclineReason,
        Family,
        FamilyStatus,
        ReferralSource,
        Screening,
        Withdrawal,
        WithdrawalReason,
    )
    from followups.models import Assessment, AssessmentStatus, BlindingGuess, LostReason, LostToFollowUp
    from followups.schedule import windows_from_settings
    from randomization.models import AllocationEntry, AllocationList, Arm
    from trial.dates import today as local_today
    from trial.models import Site, TrialSettings
    from trial.roles import Role
    from trial.tests.factories import UserFactory
    from visits.models import MAX_DAY_QUARTERS, Assignment, ContactKind, Element, InterventionPeriod, PartnerProfile

    statuses = {
        "randomised": FamilyStatus.RANDOMISED,
        "ineligible": FamilyStatus.INELIGIBLE,
        "declined": FamilyStatus.DECLINED,
        "eligible": FamilyStatus.ELIGIBLE,
        "consented": FamilyStatus.CONSENTED,
        "withdrawn": FamilyStatus.WITHDRAWN,
    }
    rng = random.Random(11)  # noqa: S311 (made-up data, reproducible)
    oslo = ZoneInfo("Europe/Oslo")
    trial_settings = TrialSettings.current()
    today = local_today()
    started = time.perf_counter()
    with transaction.atomic():
        sites = [
            Site.objects.create(code=code, name=f"Bench report {code}", expected_recruitment=REPORT_FAMILIES // 3)
            for code in SITE_CODES
        ]
        researcher = UserFactory(username="bench-report-researcher", roles=[Role.RESEARCHER], sites=sites)
        assessor = UserFactory(username="bench-report-assessor", roles=[Role.OUTCOME_ASSESSOR], sites=sites)
        data_manager = User.objects.create(username="bench-report-data-manager")

        # Families: the randomised ones first, then those excluded or still waiting, by site in turn.
        excluded_states = ["ineligible"] * 4 + ["declined"] * 3 + ["eligible", "consented", "withdrawn"]
        numbers = dict.fromkeys(range(len(sites)), 0)
        families, plans = [], []
        withdrawing: set[int] = set()
        for i in range(REPORT_FAMILIES + REPORT_EXCLUDED):
            site_index = i % len(sites)
            numbers[site_index] += 1
            is_randomised = i < REPORT_FAMILIES
            state = "randomised" if is_randomised else excluded_states[i % len(excluded_states)]
            day = today - timedelta(days=rng.randint(1 if is_randomised else 0, 730))
            if is_randomised and rng.random() < 0.05:
                # Withdrawn after randomisation: its status changes once its partner's work is in (the database
                # refuses a Family Partner for a withdrawn family).
                withdrawing.add(i)
            status = statuses[state]
            families.append(
                Family(
                    site=sites[site_index],
                    number=numbers[site_index],
                    study_id=Family.format_study_id(sites[site_index].code, numbers[site_index]),
                    referral_date=day - timedelta(days=40),
                    referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
                    status=status,
                    registered_by=researcher,
                    registration_token=uuid.uuid4(),
                )
            )
            plans.append((state, day))
        families = Family.objects.bulk_create(families, batch_size=2000)
        withdrawn_pks = {families[i].pk for i in withdrawing} | {
            f.pk for f in families if f.status == FamilyStatus.WITHDRAWN
        }
        for site_index, site in enumerate(sites):
            Site.objects.filter(pk=site.pk).update(last_family_number=numbers[site_index])

        screenings, consents, withdrawals = [], [], []
        for family, (state, day) in zip(families, plans, strict=True):
            screened_on = day - timedelta(days=30)
            eligible = state != "ineligible"
            failed = [] if eligible else rng.sample([c.value for c in Criterion], rng.choice([1, 1, 2]))
            if rng.random() < 0.1:  # screened twice: the latest decides
                screenings.append(
                    Screening(
                        family=family,
                        screened_on=screened_on - timedelta(days=5),
                        screened_by=researcher,
                        involved_with_child_welfare=True,
                        harmful_circumstances=False,
                        struggle_areas=["finances"],
                        eligible=False,
                        failed_criteria=[Criterion.HARMFUL_CIRCUMSTANCES, Criterion.STRUGGLE_AREAS],
                        submission_token=uuid.uuid4(),
                    )
                )
            screenings.append(
                Screening(
                    family=family,
                    screened_on=screened_on,
                    screened_by=researcher,
                    involved_with_child_welfare=True,
                    harmful_circumstances=eligible,
                    struggle_areas=["finances", "housing"],
                    eligible=eligible,
                    failed_criteria=failed,
                    rescreening_reason="",
                    submission_token=uuid.uuid4(),
                )
            )
            if state in ("randomised", "consented", "withdrawn"):
                consents.append(
                    Consent(
                        family=family,
                        decision="consented",
                        decided_on=day - timedelta(days=14),
                        form_version="v1",
                        obtained_by=researcher,
                        recorded_by=researcher,
                        submission_token=uuid.uuid4(),
                    )
                )
            elif state == "declined":
                consents.append(
                    Consent(
                        family=family,
                        decision="declined",
                        decided_on=day - timedelta(days=14),
                        decline_reason=rng.choice(DeclineReason.values),
                        recorded_by=researcher,
                        submission_token=uuid.uuid4(),
                    )
                )
            if family.pk in withdrawn_pks:
                withdrawals.append(
                    Withdrawal(
                        family=family,
                        withdrawn_on=min(today, day + timedelta(days=rng.randint(0, 300))),
                        reason=rng.choice(WithdrawalReason.values),
                        data_may_be_kept=True,
                        recorded_by=researcher,
                        submission_token=uuid.uuid4(),
                    )
                )
        # Screenings are ordered by recorded_at (auto_now_add): the second, eligible-or-not one of a twice-screened
        # family is created after the first, so it is the latest.
        Screening.objects.bulk_create(screenings, batch_size=5000)
        Consent.objects.bulk_create(consents, batch_size=5000)
        Withdrawal.objects.bulk_create(withdrawals, batch_size=5000)

        # Allocations, 1:1 by list position, with their own dates (written as the randomisation writes them).
        randomised = [(f, day) for f, (state, day) in zip(families, plans, strict=True) if state == "randomised"]
        lists = {
            site.pk: AllocationList.objects.create(
                site=site, length=numbers[i], used=numbers[i], commitment="0" * 64, created_by=data_manager
            )
            for i, site in enumerate(sites)
        }
        arms = {family.pk: (Arm.INTERVENTION if family.number % 2 else Arm.CONTROL) for family, _day in randomised}
        entries = AllocationEntry.objects.bulk_create(
            (
                AllocationEntry(allocation_list=lists[f.site_id], position=f.number, sealed_arm=arms[f.pk])
                for f, _day in randomised
            ),
            batch_size=5000,
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                visits_sql(ALLOCATION_INSERT),
                [
                    (
                        f.pk,
                        entry.pk,
                        arms[f.pk],
                        f.site_id,
                        f.number,
                        researcher.pk,
                        datetime(day.year, day.month, day.day, 12, tzinfo=oslo),
                    )
                    for (f, day), entry in zip(randomised, entries, strict=True)
                ],
            )

        # Losses (3 %), then the assessments: recorded in the past, stopped after a withdrawal or a loss.
        withdrawn_on = {w.family_id: w.withdrawn_on for w in withdrawals}
        losses = [
            LostToFollowUp(
                family=f,
                lost_on=min(today, day + timedelta(days=rng.randint(30, 400))),
                reason=rng.choice(LostReason.values),
                recorded_by=assessor,
                submission_token=uuid.uuid4(),
            )
            for f, day in randomised
            if f.pk not in withdrawn_on and rng.random() < 0.03
        ]
        LostToFollowUp.objects.bulk_create(losses, batch_size=5000)
        lost_on = {loss.family_id: loss.lost_on for loss in losses}
        assessments = []
        for family, day in randomised:
            consented = day - timedelta(days=14)
            assessments.append(
                Assessment(
                    family=family,
                    months=0,
                    opens_on=consented,
                    target_on=consented,
                    closes_on=day,
                    status=AssessmentStatus.COMPLETED,
                    done_on=consented,
                    mode="home_visit",
                    questionnaires=["SDQ"],
                )
            )
            stop = withdrawn_on.get(family.pk) or lost_on.get(family.pk)
            stop_reason = "withdrawal" if family.pk in withdrawn_on else "lost"
            for window in windows_from_settings(day, trial_settings):
                row = Assessment(
                    family=family,
                    months=window.months,
                    opens_on=window.opens_on,
                    target_on=window.target_on,
                    closes_on=window.closes_on,
                )
                closes_on = window.closes_on or today
                if stop is not None and closes_on >= stop:
                    row.status, row.stopped_on, row.stop_reason = AssessmentStatus.STOPPED, stop, stop_reason
                elif closes_on < today and rng.random() < 0.85:
                    outcome = rng.choice(["completed"] * 8 + ["partly", "missed", "refused"])
                    row.status = outcome
                    late = outcome in ("completed", "partly") and rng.random() < 0.1
                    row.done_on = (closes_on + timedelta(days=1)) if late else window.target_on
                    if outcome == "missed":
                        row.done_on = closes_on
                    row.outside_window = late
                    row.mode = "phone" if outcome in ("completed", "partly") else ""
                    row.questionnaires = ["SDQ"] if outcome in ("completed", "partly") else []
                    row.reason = "not_reached" if outcome == "missed" else ""
                assessments.append(row)
        assessments = Assessment.objects.bulk_create(assessments, batch_size=5000)
        BlindingGuess.objects.bulk_create(
            (
                BlindingGuess(
                    assessment=a,
                    guess=rng.choice(["intervention", "control", "dont_know", "dont_know"]),
                    guessed_by=assessor,
                )
                for a in assessments
                if a.months and a.status in ("completed", "partly")
            ),
            batch_size=5000,
        )

        # Family Partners (capacity 5) and the intervention families' periods and assignments: most started 1 to 3
        # weeks after randomisation, a few still waiting; a third ended after 3 to 18 months.
        capacity = trial_settings.partner_capacity
        intervention = [(f, day) for f, day in randomised if arms[f.pk] == Arm.INTERVENTION]
        partner_count = math.ceil(1.2 * len(intervention) / capacity) + 3 * len(sites)
        users = User.objects.bulk_create(
            User(username=f"bench-report-partner-{i:05d}", password=make_password(None)) for i in range(partner_count)
        )
        group = Group.objects.get_or_create(name=Role.FAMILY_PARTNER)[0]
        User.groups.through.objects.bulk_create(User.groups.through(user=user, group=group) for user in users)
        partners = PartnerProfile.objects.bulk_create(
            PartnerProfile(user=user, site=sites[i % len(sites)], capacity=capacity) for i, user in enumerate(users)
        )
        by_site = {site.pk: [p for p in partners if p.site_id == site.pk] for site in sites}
        periods, assignments, slots = [], [], {p.pk: 0 for p in partners}
        for family, day in intervention:
            start = day + timedelta(days=rng.randint(7, 21))
            if start >= today or rng.random() < 0.03:
                continue  # waiting for a Family Partner
            end = start + timedelta(days=rng.randint(90, 540))
            ended = end if end < today and rng.random() < 0.6 else None
            if family.pk in withdrawn_on:
                if withdrawn_on[family.pk] <= start:
                    continue  # withdrew before a Family Partner
                ended = min(ended or withdrawn_on[family.pk], withdrawn_on[family.pk])
            period = InterventionPeriod(
                family=family,
                started_on=start,
                planned_end_on=start + timedelta(days=365),
                ended_on=ended,
                end_reason="completed" if ended else "",
                ended_by=researcher if ended else None,
            )
            periods.append(period)
            partner = next(p for p in by_site[family.site_id] if slots[p.pk] < capacity)
            slots[partner.pk] += 1
            assignments.append(
                Assignment(
                    family=family,
                    partner=partner,
                    started_on=start,
                    ended_on=ended,
                    end_reason="Bench: ended" if ended else "",
                    assigned_by=researcher,
                )
            )
        InterventionPeriod.objects.bulk_create(periods, batch_size=5000)
        Assignment.objects.bulk_create(assignments, batch_size=5000)

        with connection.cursor() as cursor:
            cursor.execute(visits_sql(FAMILY_DAYS), {"today": today, "site_ids": [site.pk for site in sites]})
            cursor.execute("SELECT count(*) FROM bench_family_day")
            family_days = cursor.fetchone()[0]
            repeats = max(1, math.ceil(REPORT_CONTACTS / family_days))
            mean = float(trial_settings.weekly_hours_target) * 4 * family_days / 7 / REPORT_CONTACTS
            longest = max(1, min(round(2 * mean - 1), 48, (MAX_DAY_QUARTERS - 16) // repeats))
            contacts_started = time.perf_counter()
            cursor.execute(
                visits_sql(CONTACTS_INSERT),
                {
                    "longest": longest,
                    "kinds": list(ContactKind.values),
                    "elements": [
                        f'["{Element.HOME_VISITATION}", "{Element.PARENTAL_GUIDANCE}"]',
                        f'["{Element.COORDINATION}"]',
                        f'["{Element.ECOLOGICAL}", "{Element.THERAPEUTIC_RELATIONSHIP}"]',
                    ],
                    "notes_share": 0.0,
                    "notes": [""],
                    "repeats": repeats,
                    "contacts": REPORT_CONTACTS,
                },
            )
            cursor.execute("DROP TABLE bench_family_day")
            contacts_seconds = time.perf_counter() - contacts_started
        Family.objects.filter(pk__in=[families[i].pk for i in withdrawing]).update(status=FamilyStatus.WITHDRAWN)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "sites": sites,
        "families": len(families),
        "randomised": len(randomised),
        "assessments": len(assessments),
        "periods": len(periods),
        "seconds": time.perf_counter() - started,
        "contacts_seconds": contacts_seconds,
    }


# The floor: the flow's counts in one statement, written by hand (latest screening and consent by LATERAL joins, one
# pass over the families with conditional aggregation). {tables} are the models'; site ids are a parameter.
FLOOR_SQL = """
SELECT
    count(*) FILTER (WHERE s.eligible IS NOT NULL) AS assessed,
    count(*) FILTER (WHERE a.arm IS NULL AND s.eligible = false) AS not_eligible,
    count(*) FILTER (WHERE a.arm IS NULL AND s.eligible AND c.decision = 'declined') AS declined,
    count(*) FILTER (WHERE a.arm IS NULL AND s.eligible AND c.decision IS DISTINCT FROM 'declined') AS other,
    count(a.arm) AS randomised,
    count(*) FILTER (WHERE a.arm = 'intervention') AS allocated_i,
    count(*) FILTER (WHERE a.arm = 'control') AS allocated_c,
    count(*) FILTER (
        WHERE a.arm = 'intervention'
        AND EXISTS (SELECT 1 FROM {assignment} x WHERE x.family_id = f.id)
        AND EXISTS (SELECT 1 FROM {contact} k WHERE k.family_id = f.id AND k.voided_at IS NULL)
    ) AS received_i,
    count(*) FILTER (WHERE a.arm = 'intervention' AND t.m0) AS baseline_i,
    count(*) FILTER (WHERE a.arm = 'control' AND t.m0) AS baseline_c,
    count(*) FILTER (WHERE a.arm = 'intervention' AND t.m3) AS m3_i,
    count(*) FILTER (WHERE a.arm = 'control' AND t.m3) AS m3_c,
    count(*) FILTER (WHERE a.arm = 'intervention' AND t.m6) AS m6_i,
    count(*) FILTER (WHERE a.arm = 'control' AND t.m6) AS m6_c,
    count(*) FILTER (WHERE a.arm = 'intervention' AND t.m12) AS m12_i,
    count(*) FILTER (WHERE a.arm = 'control' AND t.m12) AS m12_c,
    count(*) FILTER (WHERE a.arm = 'intervention' AND t.m18) AS m18_i,
    count(*) FILTER (WHERE a.arm = 'control' AND t.m18) AS m18_c,
    count(l.id) FILTER (WHERE a.arm = 'intervention') AS lost_i,
    count(l.id) FILTER (WHERE a.arm = 'control') AS lost_c,
    count(w.id) FILTER (WHERE a.arm = 'intervention') AS withdrawn_i,
    count(w.id) FILTER (WHERE a.arm = 'control') AS withdrawn_c
FROM {family} f
LEFT JOIN LATERAL (
    SELECT eligible FROM {screening} WHERE family_id = f.id ORDER BY recorded_at DESC, id DESC LIMIT 1
) s ON true
LEFT JOIN LATERAL (
    SELECT decision FROM {consent} WHERE family_id = f.id ORDER BY recorded_at DESC, id DESC LIMIT 1
) c ON true
LEFT JOIN {allocation} a ON a.family_id = f.id
LEFT JOIN {lost} l ON l.family_id = f.id
LEFT JOIN {withdrawal} w ON w.family_id = f.id
LEFT JOIN (
    SELECT family_id,
           bool_or(months = 0) AS m0, bool_or(months = 3) AS m3, bool_or(months = 6) AS m6,
           bool_or(months = 12) AS m12, bool_or(months = 18) AS m18
    FROM {assessment} WHERE status IN ('completed', 'partly') GROUP BY family_id
) t ON t.family_id = f.id
WHERE f.site_id = ANY(%s)
"""


def floor_sql() -> str:
    from families.models import Consent, Family, Screening, Withdrawal
    from followups.models import Assessment, LostToFollowUp
    from randomization.models import Allocation
    from visits.models import Assignment, Contact

    tables = {
        "family": Family,
        "screening": Screening,
        "consent": Consent,
        "allocation": Allocation,
        "lost": LostToFollowUp,
        "withdrawal": Withdrawal,
        "assessment": Assessment,
        "assignment": Assignment,
        "contact": Contact,
    }
    return FLOOR_SQL.format(**{name: model._meta.db_table for name, model in tables.items()})


def _timed(call) -> tuple[float, float, int]:
    """Median and p95 (ms) of REPORT_RUNS calls after a warm-up, and the reading queries of one more."""

    from bench.run import counting_queries, percentile

    call()
    times = []
    for _ in range(REPORT_RUNS):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    with counting_queries() as queries:
        call()
    # The statements that read data (not the transaction's BEGIN/SET/SAVEPOINT housekeeping).
    reads = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    return statistics.median(times) * 1000, percentile(times, 0.95) * 1000, len(reads)


def benchmark_report() -> tuple[list[tuple], list[str]]:
    """The rows (bench/run.py's table format: what, n, rate, median ms, p95 ms, queries) and the lines around them."""
    from django.db import connection

    from reports.figures import build_report, report_session
    from reports.render.csvzip import render_csv_zip
    from reports.render.pdf import render_pdf
    from reports.render.xlsx import render_xlsx
    from reports.tables import ReportFilters

    if connection.vendor != "postgresql":
        return [], ["Report figures: need PostgreSQL (the data is loaded in SQL)"]
    filled = fill_report()
    site_ids = [site.pk for site in filled["sites"]]
    sql = floor_sql()

    def floor(ids: list[int]) -> tuple:
        # On the same footing as the report: its session's settings (no JIT, the same work_mem).
        with report_session(), connection.cursor() as cursor:
            cursor.execute(sql, [ids])
            return cursor.fetchone()

    all_sites = ReportFilters(site_ids=frozenset(site_ids), start=None, end=None)
    one_site = ReportFilters(site_ids=frozenset(site_ids[:1]), start=None, end=None)
    report = build_report(all_sites)
    counts = floor(site_ids)
    # The report and the floor agree (assessed, excluded, randomised, intervention received): else say so.
    agree = (
        counts[0] == report.flow.assessed.n
        and sum(counts[1:4]) == report.flow.excluded.n
        and counts[4] == report.flow.randomised.n
        and counts[7] == report.flow.arms[0].received.n
    )
    measured = [
        (f"report figures, {len(site_ids)} sites", *_timed(lambda: build_report(all_sites))),
        ("floor: one SQL query, 3 sites", *_timed(lambda: floor(site_ids))),
        ("report figures, 1 site", *_timed(lambda: build_report(one_site))),
        ("floor: one SQL query, 1 site", *_timed(lambda: floor(site_ids[:1]))),
        # The downloads as a PI gets them: the figures, then the file.
        ("report PDF, 3 sites", *_timed(lambda: render_pdf(build_report(all_sites)))),
        ("report Excel, 3 sites", *_timed(lambda: render_xlsx(build_report(all_sites)))),
        ("report CSV zip, 3 sites", *_timed(lambda: render_csv_zip(build_report(all_sites)))),
    ]
    rows = [(what, REPORT_RUNS, "", median, p95, str(queries)) for what, median, p95, queries in measured]
    failed_checks = [str(check.label) for check in report.flow.checks if not check.passed]
    lines = [
        f"Report figures: {filled['families']} families at {', '.join(SITE_CODES)} ({filled['randomised']} randomised, "
        f"{filled['assessments']} assessments, {filled['periods']} interventions, {REPORT_CONTACTS} contacts), "
        f"filled in {filled['seconds']:.0f} s (contacts {filled['contacts_seconds']:.0f} s)",
        f"ratio to the floor: 3 sites {measured[0][1] / measured[1][1]:.1f} x, 1 site "
        f"{measured[2][1] / measured[3][1]:.1f} x; goal: figures within 2 s and 3 x the floor; PDF and Excel (figures "
        "included) within 5 s",
        f"the report's flow and the floor's agree: {agree}; checks failed: {failed_checks or 'none'}",
    ]
    return rows, lines


if __name__ == "__main__":  # on its own, in a fresh database: python bench/report.py (PostgreSQL)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.standalone import fresh_database

    fresh_database("The report benchmark")
    from bench.run import print_table

    bench_rows, bench_lines = benchmark_report()
    print("\n".join(bench_lines))
    print()
    print_table(bench_rows)
