"""The report's set-based count of family-weeks (visits.selectors.family_week_counts) agrees with the pages' own
week-by-week reading (week_quarters, and the days of a week within the intervention that expected_quarters
prorates by), for interventions that start and end on every kind of day, ongoing ones, ones that started this week,
and contact days before, inside and after the intervention and in the week not ended yet."""

from collections import Counter
from datetime import date, timedelta

from families.models import Family
from families.tests.factories import days_ago
from visits import selectors, weeks
from visits.models import ContactDay, InterventionPeriod
from visits.tests.factories import assigned_family, days_back


def _brute_force(family_ids: list[int], before: date) -> Counter:
    """Every intervention week that ended before `before`, one by one, as the pages read them."""
    counts: Counter = Counter()
    current = weeks.week_of(before)
    for period in InterventionPeriod.objects.filter(family_id__in=family_ids):
        end = min(period.ended_on or before, before - timedelta(days=1))
        week = weeks.week_of(period.started_on)
        while week.start < current.start and week.start <= end:
            totals = selectors.week_quarters([period.family_id], week, week)
            days = (min(week.end, end) - max(week.start, period.started_on)).days + 1
            counts[(days, totals.get((period.family_id, week.start), 0))] += 1
            week = week.shifted(1)
    return counts


def test_it_counts_the_weeks_the_pages_show(oei, alice, fiona, gunnar):
    today = days_ago(0)
    monday = weeks.week_start(today)
    # (start, end) of each intervention, relative to this week's Monday.
    spans = [
        (monday - timedelta(days=68), None),  # a Wednesday ten weeks ago, ongoing
        (monday - timedelta(days=42), monday - timedelta(days=11)),  # a Monday to a Thursday
        (monday - timedelta(days=22), monday - timedelta(days=22)),  # one Saturday
        (monday - timedelta(days=15), monday - timedelta(days=9)),  # a Sunday to the next Saturday
        (monday + timedelta(days=max(0, (today - monday).days)), None),  # started this week: no week ended yet
        (monday - timedelta(days=30), monday + timedelta(days=40)),  # ends in the future
    ]
    families: list[Family] = []
    for number, (started, ended) in enumerate(spans):
        with days_back(80):
            family = assigned_family(oei, researcher=alice, to=fiona if number < 3 else gunnar, started_on=days_ago(0))
        ending = {"ended_on": ended, "end_reason": "completed", "ended_by": alice} if ended else {}
        InterventionPeriod.objects.filter(family=family).update(started_on=started, **ending)
        families.append(family)
        # Contact days every third day from before the start to today, with hours that vary.
        day = started - timedelta(days=5)
        while day <= today:
            ContactDay.objects.create(family=family, day=day, quarters=(day.toordinal() + number) % 9)
            day += timedelta(days=3)
    family_ids = [family.pk for family in families]

    counted = Counter(
        {
            (days, quarters): n
            for days, quarters, n in selectors.family_week_counts(
                Family.objects.filter(pk__in=family_ids), before=today
            )
        }
    )

    expected = _brute_force(family_ids, today)
    assert counted == expected
    assert sum(expected.values()) > 15  # the spans above do give many weeks, of several lengths
    assert {days for days, _quarters in expected} >= {1, 2, 4, 5, 6, 7}
