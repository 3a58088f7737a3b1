"""Which reminder an assessment's window calls for on a given day: pure, so that the sweep and the check made
again at send time agree, and so that the tests can walk every day of a window.

A window has up to four reminder days (dates in Europe/Oslo): `opens_days` before it opens, the day it opens,
`closes_days` before it closes, and the day after it closed (missed: nothing was recorded). On any day the
assessment's *stage* is the last of these days that has come; a reminder is made for the stage only while its day
is at most CATCH_UP_DAYS old. So a sweep on a later day never repeats a stage, and a sweep that did not run for a
few days sends the stage the assessment is in now, once, and not the stages it passed through meanwhile
(docs/decisions.md, "Issue 10: reminders").
"""

from dataclasses import dataclass
from datetime import date, timedelta

# A sweep that did not run (a worker down, the beat stopped) is caught up for this many days; older reminders
# are not made any more: after a week, the status grid and the worklist say more than a late e-mail.
CATCH_UP_DAYS = 7

OPENS_SOON = "assessment_opens_soon"
OPEN = "assessment_open"
CLOSING = "assessment_closing"
MISSED = "assessment_missed"
ORDER = (OPENS_SOON, OPEN, CLOSING, MISSED)


@dataclass(frozen=True)
class Stage:
    kind: str
    day: date  # the reminder's due date: the day the stage began


def reminder_days(opens_on: date, closes_on: date | None, *, opens_days: int, closes_days: int) -> list[Stage]:
    """The window's reminder days, in order. A baseline (no closing date) only opens. "Opens in N days" is left
    out when N is 0 (it is the opening), and "closes in N days" when that day is not after the opening (a window
    shorter than N days: the opening's reminder gives the closing date)."""
    stages = []
    if opens_days > 0:
        stages.append(Stage(OPENS_SOON, opens_on - timedelta(days=opens_days)))
    stages.append(Stage(OPEN, opens_on))
    if closes_on is not None:
        closing = closes_on - timedelta(days=closes_days)
        if closing > opens_on:
            stages.append(Stage(CLOSING, closing))
        stages.append(Stage(MISSED, closes_on + timedelta(days=1)))
    return stages


def stage_on(today: date, opens_on: date, closes_on: date | None, *, opens_days: int, closes_days: int) -> Stage | None:
    """The reminder an assessment not yet recorded calls for on `today`: its current stage, if that began at most
    CATCH_UP_DAYS ago; None before the first reminder day and once the stage is older."""
    current = None
    for stage in reminder_days(opens_on, closes_on, opens_days=opens_days, closes_days=closes_days):
        if stage.day <= today:
            current = stage
    if current is None or current.day < today - timedelta(days=CATCH_UP_DAYS):
        return None
    return current


def candidate_range(today: date, *, opens_days: int, closes_days: int) -> tuple[tuple[date, date], tuple[date, date]]:
    """The opening and closing dates an assessment must have (either) for `stage_on(today)` to be anything: the
    sweep's filter in the database (a superset; `stage_on` decides)."""
    earliest = today - timedelta(days=CATCH_UP_DAYS)
    opens = (earliest, today + timedelta(days=opens_days))
    closes = (earliest - timedelta(days=1), today + timedelta(days=closes_days))
    return opens, closes
