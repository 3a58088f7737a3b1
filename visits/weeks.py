"""ISO weeks (Monday first) in the trial's time zone, and hours kept as whole quarter-hours.

A contact's date is the date in Norway on which it happened, so its week is a matter of the calendar only;
"this week" is taken from the date in Europe/Oslo now (settings.TIME_ZONE), never from UTC.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils import formats

from trial.dates import add_months, today

__all__ = ["add_months", "today"]

QUARTERS_PER_HOUR = 4


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, order=True)
class Week:
    start: date  # a Monday

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def year(self) -> int:
        """The ISO year: 31 December can belong to week 1 of the next year, 1 January to week 52 or 53."""
        return self.start.isocalendar().year

    @property
    def number(self) -> int:
        return self.start.isocalendar().week

    @property
    def code(self) -> str:
        """As ISO 8601 writes it and as the pages' addresses take it: 2026-W53."""
        return f"{self.year}-W{self.number:02d}"

    def shifted(self, weeks: int) -> "Week":
        return Week(self.start + timedelta(weeks=weeks))


def week_of(day: date) -> Week:
    return Week(week_start(day))


def parse_week(code: str) -> Week | None:
    """A week from "2026-W53"; None for anything else (including week 53 of a year that has 52)."""
    try:
        year_text, number_text = code.split("-W")
        return Week(date.fromisocalendar(int(year_text), int(number_text), 1))
    except (ValueError, TypeError):
        return None


def weeks_until(last: Week, count: int) -> list[Week]:
    """`count` consecutive weeks ending with `last`, oldest first."""
    return [last.shifted(-offset) for offset in range(count - 1, -1, -1)]


def hours(quarters: int) -> Decimal:
    return Decimal(quarters) / QUARTERS_PER_HOUR


def format_hours(quarters: int) -> str:
    """Hours in the page's language, without trailing zeros: 1.25 (1,25 in Norwegian), 2, 0.5."""
    return formats.number_format(hours(quarters).normalize())
