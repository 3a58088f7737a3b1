"""ISO weeks in Oslo and the hours summed per family and week: around New Year, around the summer-time
changes, and the target prorated for the first and last week of an intervention."""

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import translation

from families.tests.factories import days_ago
from trial.models import TrialSettings
from visits import selectors, weeks
from visits.models import Contact, ContactDay, Element, InterventionPeriod
from visits.selectors import WeekDose, expected_quarters
from visits.services import family_assign
from visits.tests.factories import log_contact, partner, randomised_family


def week(code: str) -> weeks.Week:
    parsed = weeks.parse_week(code)
    assert parsed is not None, code
    return parsed


# --- Weeks of the calendar --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "code"),
    [
        (date(2026, 12, 27), "2026-W52"),  # a Sunday
        (date(2026, 12, 28), "2026-W53"),  # the Monday of 2026's 53rd week
        (date(2026, 12, 31), "2026-W53"),
        (date(2027, 1, 1), "2026-W53"),  # New Year's Day belongs to the old year's week
        (date(2027, 1, 3), "2026-W53"),  # its Sunday
        (date(2027, 1, 4), "2027-W01"),
        (date(2025, 12, 28), "2025-W52"),
        (date(2025, 12, 29), "2026-W01"),  # 29 December belongs to the new year's first week
        (date(2026, 1, 1), "2026-W01"),
        (date(2026, 3, 29), "2026-W13"),  # the Sunday summer time starts
        (date(2026, 3, 30), "2026-W14"),
        (date(2026, 10, 25), "2026-W43"),  # the Sunday summer time ends
        (date(2026, 10, 26), "2026-W44"),
    ],
)
def test_a_day_belongs_to_its_iso_week(day, code):
    assert weeks.week_of(day).code == code


def test_a_week_runs_from_monday_to_sunday():
    new_year = weeks.week_of(date(2027, 1, 1))

    assert (new_year.start, new_year.end) == (date(2026, 12, 28), date(2027, 1, 3))
    assert (new_year.year, new_year.number) == (2026, 53)


@pytest.mark.parametrize(
    ("code", "monday"),
    [("2026-W53", date(2026, 12, 28)), ("2027-W01", date(2027, 1, 4)), ("2026-W01", date(2025, 12, 29))],
)
def test_parse_week_reads_what_code_writes(code, monday):
    parsed = weeks.parse_week(code)

    assert parsed == weeks.Week(monday)
    assert parsed.code == code


@pytest.mark.parametrize(
    "junk",
    ["2025-W53", "2026-W54", "2026-W00", "", "2026", "2026-53", "2026-W", "W12", "abcd-W01", "2026-W1x", "2026-W01-2"],
)
def test_parse_week_refuses_anything_but_a_real_week(junk):
    assert weeks.parse_week(junk) is None


def test_weeks_until_runs_across_new_year():
    shown = weeks.weeks_until(week("2027-W02"), 4)

    assert [w.code for w in shown] == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]


def test_weeks_until_across_a_year_of_52_weeks():
    shown = weeks.weeks_until(week("2026-W01"), 2)

    assert [w.code for w in shown] == ["2025-W52", "2026-W01"]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2026, 3, 31), 3, date(2026, 6, 30)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2025, 1, 6), 18, date(2026, 7, 6)),
        (date(2026, 5, 10), 0, date(2026, 5, 10)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_months_last(day, months, expected):
    assert weeks.add_months(day, months) == expected


def test_hours_are_written_without_trailing_zeros_in_the_pages_language():
    assert weeks.hours(5) == Decimal("1.25")
    assert weeks.format_hours(5) == "1.25"
    assert weeks.format_hours(8) == "2"
    assert weeks.format_hours(2) == "0.5"
    with translation.override("nb"):
        assert weeks.format_hours(5) == "1,25"


# --- Today in Oslo ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "today", "code"),
    [
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), date(2026, 3, 29), "2026-W13"),  # 23:59 summer time
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), date(2026, 3, 30), "2026-W14"),  # 00:30 on Monday
        (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), date(2026, 10, 25), "2026-W43"),  # 23:59 winter time
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 26), "2026-W44"),  # 00:30 on Monday
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), date(2027, 1, 1), "2026-W53"),
        (datetime(2027, 1, 3, 23, 0, tzinfo=UTC), date(2027, 1, 4), "2027-W01"),
    ],
)
def test_today_is_the_date_in_oslo(now, today, code):
    assert weeks.today(now) == today
    assert weeks.week_of(weeks.today(now)).code == code


def test_today_without_an_argument_reads_the_clock_in_oslo():
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 12, 31, 23, 30, tzinfo=UTC)):
        assert weeks.today() == date(2027, 1, 1)


# --- Hours per family and week ---------------------------------------------------------------------------------


@pytest.fixture
def family(oei, alice):
    return randomised_family(oei, researcher=alice)


@pytest.fixture
def other_family(oei, alice):
    return randomised_family(oei, researcher=alice)


def contact(family, day: date, quarters: int, *, by) -> Contact:
    """A contact written straight to the table (the database's triggers still keep the daily totals), so that
    any date can be used, future ones included."""
    return Contact.objects.create(
        family=family,
        author=by,
        contact_date=day,
        duration_quarters=quarters,
        kind="home_visit",
        elements=[Element.HOME_VISITATION],
        submission_token=uuid.uuid4(),
    )


def test_a_sunday_contact_counts_in_the_week_before_the_monday_contact(family, alice):
    contact(family, date(2026, 11, 22), 4, by=alice)  # Sunday
    contact(family, date(2026, 11, 23), 8, by=alice)  # Monday
    contact(family, date(2026, 11, 23), 2, by=alice)

    totals = selectors.week_quarters([family.pk], week("2026-W47"), week("2026-W48"))

    assert totals == {(family.pk, date(2026, 11, 16)): 4, (family.pk, date(2026, 11, 23)): 10}


def test_new_years_eve_and_new_years_day_count_in_the_same_week(family, alice):
    contact(family, date(2026, 12, 27), 1, by=alice)  # Sunday of W52
    contact(family, date(2026, 12, 31), 8, by=alice)
    contact(family, date(2027, 1, 1), 6, by=alice)
    contact(family, date(2027, 1, 3), 2, by=alice)
    contact(family, date(2027, 1, 4), 4, by=alice)

    totals = selectors.week_quarters([family.pk], week("2026-W52"), week("2027-W01"))

    assert totals == {
        (family.pk, date(2026, 12, 21)): 1,
        (family.pk, date(2026, 12, 28)): 16,
        (family.pk, date(2027, 1, 4)): 4,
    }


def test_contacts_around_the_summer_time_changes_count_in_their_calendar_weeks(family, alice):
    contact(family, date(2026, 3, 29), 3, by=alice)
    contact(family, date(2026, 3, 30), 5, by=alice)
    contact(family, date(2026, 10, 25), 7, by=alice)
    contact(family, date(2026, 10, 26), 9, by=alice)

    spring = selectors.week_quarters([family.pk], week("2026-W13"), week("2026-W14"))
    autumn = selectors.week_quarters([family.pk], week("2026-W43"), week("2026-W44"))

    assert spring == {(family.pk, week("2026-W13").start): 3, (family.pk, week("2026-W14").start): 5}
    assert autumn == {(family.pk, week("2026-W43").start): 7, (family.pk, week("2026-W44").start): 9}
    # "This week" just after midnight on those Mondays, in Oslo, is the Monday contact's week.
    monday_spring = weeks.week_of(weeks.today(datetime(2026, 3, 29, 22, 30, tzinfo=UTC)))
    monday_autumn = weeks.week_of(weeks.today(datetime(2026, 10, 25, 23, 30, tzinfo=UTC)))
    assert spring[(family.pk, monday_spring.start)] == 5
    assert autumn[(family.pk, monday_autumn.start)] == 9


def test_week_sums_keep_families_apart_and_leave_out_weeks_not_asked_for(family, other_family, alice):
    contact(family, date(2026, 11, 2), 4, by=alice)
    contact(other_family, date(2026, 11, 3), 6, by=alice)
    contact(family, date(2026, 10, 25), 8, by=alice)  # the week before
    contact(family, date(2026, 11, 9), 8, by=alice)  # the week after

    totals = selectors.week_quarters([family.pk, other_family.pk], week("2026-W45"), week("2026-W45"))

    assert totals == {(family.pk, date(2026, 11, 2)): 4, (other_family.pk, date(2026, 11, 2)): 6}
    assert selectors.week_quarters([other_family.pk], week("2026-W45"), week("2026-W45")) == {
        (other_family.pk, date(2026, 11, 2)): 6
    }


def test_a_contact_moved_to_another_week_moves_its_hours(family, alice):
    moved = contact(family, date(2026, 11, 8), 8, by=alice)  # Sunday of W45

    moved.contact_date = date(2026, 11, 9)
    moved.save()

    totals = selectors.week_quarters([family.pk], week("2026-W45"), week("2026-W46"))
    assert totals.get((family.pk, date(2026, 11, 2)), 0) == 0
    assert totals[(family.pk, date(2026, 11, 9))] == 8
    assert ContactDay.objects.get(family=family, day=date(2026, 11, 8)).quarters == 0


# --- The target, prorated ----------------------------------------------------------------------------------------


def period(started_on: date, ended_on: date | None = None) -> InterventionPeriod:
    return InterventionPeriod(started_on=started_on, planned_end_on=weeks.add_months(started_on, 12), ended_on=ended_on)


WEEK_45 = weeks.Week(date(2026, 11, 2))  # Monday 2 to Sunday 8 November 2026


@pytest.mark.parametrize(
    ("started_on", "ended_on", "expected"),
    [
        (date(2026, 10, 1), None, 24),  # the whole week
        (date(2026, 11, 2), None, 24),  # started on the Monday
        (date(2026, 11, 4), None, 17),  # started on Wednesday: 5 of 7 days of 24 quarters
        (date(2026, 11, 8), None, 3),  # started on the Sunday: 1 day
        (date(2026, 11, 9), None, 0),  # started the week after
        (date(2026, 10, 1), date(2026, 11, 3), 7),  # ended on Tuesday: 2 days
        (date(2026, 10, 1), date(2026, 11, 8), 24),  # ended on the Sunday
        (date(2026, 10, 1), date(2026, 11, 1), 0),  # ended the Sunday before
        (date(2026, 11, 4), date(2026, 11, 6), 10),  # Wednesday to Friday: 3 days
    ],
)
def test_the_target_is_prorated_by_the_days_the_intervention_ran(started_on, ended_on, expected):
    assert expected_quarters(period(started_on, ended_on), WEEK_45, 24) == expected


def test_there_is_no_target_without_an_intervention():
    assert expected_quarters(None, WEEK_45, 24) == 0


@pytest.mark.parametrize(
    ("quarters", "expected", "level"),
    [
        (24, 24, "on-target"),
        (30, 24, "on-target"),
        (23, 24, "partial"),
        (12, 24, "partial"),
        (11, 24, "low"),
        (0, 24, "low"),
        (17, 17, "on-target"),
        (9, 17, "partial"),  # 18 >= 17
        (8, 17, "low"),
        (0, 0, "outside"),
        (8, 0, "outside"),  # contacts in a week the intervention did not run
    ],
)
def test_a_weeks_level_against_its_target(quarters, expected, level):
    assert WeekDose(WEEK_45, quarters, expected).level == level


def test_a_weeks_percent_and_bar():
    dose = WeekDose(WEEK_45, 36, 24)

    assert (dose.percent, dose.bar_percent, dose.hours) == (150, 100, Decimal(9))
    assert WeekDose(WEEK_45, 5, 0).percent == 0


def test_the_weekly_target_comes_from_the_trial_settings(db):
    trial_settings = TrialSettings.current()
    trial_settings.weekly_hours_target = Decimal("4.5")
    trial_settings.save()

    assert selectors.target_quarters(TrialSettings.current()) == 18


# --- A family's weeks, from contacts logged by its Family Partner ------------------------------------------------


def test_a_familys_weeks_from_logged_contacts(oei, alice):
    fiona = partner(oei, "fiona")
    # Randomised and assigned on Wednesday 4 November 2026, so the first week is prorated.
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 11, 4, 9, 0, tzinfo=UTC)):
        family = randomised_family(oei, researcher=alice)
    family_assign(family=family, partner=fiona, started_on=date(2026, 11, 4), assigned_by=alice)
    log_contact(family, by=fiona.user, contact_date=date(2026, 11, 8), duration_quarters=18)  # Sunday
    log_contact(family, by=fiona.user, contact_date=date(2026, 11, 9), duration_quarters=8)  # Monday
    log_contact(family, by=fiona.user, contact_date=date(2026, 11, 11), duration_quarters=6)

    shown = selectors.family_weeks(family, today=date(2026, 11, 15), count=3)

    # Three weeks asked for, two shown: none from before the intervention started. The running week is judged on
    # its six days before Sunday (21 quarter-hours expected so far: 14 is at least half).
    assert [
        (dose.week.code, dose.quarters, dose.expected_quarters, dose.expected_so_far, dose.level) for dose in shown
    ] == [
        ("2026-W46", 14, 24, 21, "partial"),
        ("2026-W45", 18, 17, None, "on-target"),
    ]


def test_the_week_totals_add_up_families_and_their_prorated_targets(oei, alice):
    fiona = partner(oei, "fiona")
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 10, 26, 9, 0, tzinfo=UTC)):
        first = randomised_family(oei, researcher=alice)
        second = randomised_family(oei, researcher=alice)
    family_assign(family=first, partner=fiona, started_on=date(2026, 10, 26), assigned_by=alice)  # Monday, W44
    family_assign(family=second, partner=fiona, started_on=date(2026, 11, 4), assigned_by=alice)  # Wednesday, W45
    log_contact(first, by=fiona.user, contact_date=date(2026, 11, 2), duration_quarters=20)
    log_contact(second, by=fiona.user, contact_date=date(2026, 11, 8), duration_quarters=10)
    shown = [week("2026-W44"), week("2026-W45")]

    totals = selectors.week_totals(selectors.families_in_intervention(frozenset({oei.pk})), shown)

    assert [(t.week.code, t.quarters, t.expected_quarters, t.families) for t in totals] == [
        ("2026-W44", 0, 24, 1),
        ("2026-W45", 30, 24 + 17, 2),
    ]


def test_this_weeks_target_counts_from_the_day_of_the_assignment(oei, alice):
    fiona = partner(oei, "fiona")
    family = randomised_family(oei, researcher=alice)
    family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)
    log_contact(family, by=fiona.user, duration_quarters=8)

    (this_week,) = selectors.family_weeks(family, today=days_ago(0), count=1)

    assert this_week.week == weeks.week_of(days_ago(0))
    assert this_week.quarters == 8
    days_left = (this_week.week.end - days_ago(0)).days + 1
    assert this_week.expected_quarters == round(24 * days_left / 7)
    assert this_week.in_period


def test_a_week_after_the_end_has_no_target(db):
    ended = period(date(2026, 10, 1), date(2026, 11, 3))

    assert expected_quarters(ended, WEEK_45.shifted(1), 24) == 0
    assert expected_quarters(ended, WEEK_45.shifted(-1), 24) == 24


def test_shifted_weeks_cross_new_year():
    assert week("2026-W53").shifted(1).code == "2027-W01"
    assert week("2027-W01").shifted(-1).code == "2026-W53"
    assert week("2026-W01").shifted(-1) == weeks.Week(date(2025, 12, 22))
    assert week("2026-W01").shifted(-1).start + timedelta(days=7) == date(2025, 12, 29)
