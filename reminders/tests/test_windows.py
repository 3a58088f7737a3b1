"""The stage of a window on each day, pure: the sweep and the check at send time both ask it."""

from datetime import date, timedelta

from reminders.windows import CATCH_UP_DAYS, CLOSING, MISSED, OPEN, OPENS_SOON, Stage, reminder_days, stage_on

OPENS, CLOSES = date(2027, 4, 1), date(2027, 5, 13)


def stage(day: date, opens=OPENS, closes=CLOSES, opens_days=7, closes_days=3):
    return stage_on(day, opens, closes, opens_days=opens_days, closes_days=closes_days)


def test_it_has_four_reminder_days_for_a_follow_up_window():
    assert reminder_days(OPENS, CLOSES, opens_days=7, closes_days=3) == [
        Stage(OPENS_SOON, date(2027, 3, 25)),
        Stage(OPEN, OPENS),
        Stage(CLOSING, date(2027, 5, 10)),
        Stage(MISSED, date(2027, 5, 14)),
    ]


def test_it_only_opens_a_baseline():
    assert [s.kind for s in reminder_days(OPENS, None, opens_days=7, closes_days=3)] == [OPENS_SOON, OPEN]


def test_it_leaves_out_closing_soon_for_a_window_shorter_than_the_notice():
    short = reminder_days(OPENS, OPENS + timedelta(days=2), opens_days=0, closes_days=3)
    assert [s.kind for s in short] == [OPEN, MISSED]


def test_each_day_of_a_window_is_in_the_stage_that_began_last():
    assert stage(date(2027, 3, 24)) is None
    assert stage(date(2027, 3, 25)) == Stage(OPENS_SOON, date(2027, 3, 25))
    assert stage(date(2027, 3, 31)) == Stage(OPENS_SOON, date(2027, 3, 25))
    assert stage(OPENS) == Stage(OPEN, OPENS)
    assert stage(date(2027, 5, 9)) is None  # the opening is more than the catch-up ago, the closing not yet
    assert stage(date(2027, 5, 10)) == Stage(CLOSING, date(2027, 5, 10))
    assert stage(CLOSES) == Stage(CLOSING, date(2027, 5, 10))
    assert stage(CLOSES + timedelta(days=1)) == Stage(MISSED, date(2027, 5, 14))


def test_a_stage_is_caught_up_for_a_week_and_not_after():
    day = OPENS + timedelta(days=CATCH_UP_DAYS)
    assert stage(day) == Stage(OPEN, OPENS)
    assert stage(day + timedelta(days=1)) is None
    missed = CLOSES + timedelta(days=1)
    assert stage(missed + timedelta(days=CATCH_UP_DAYS)) == Stage(MISSED, missed)
    assert stage(missed + timedelta(days=CATCH_UP_DAYS + 1)) is None
