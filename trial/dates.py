"""Dates in the trial's time zone (Europe/Oslo, settings.TIME_ZONE), and calendar months.

A date in the trial (a contact, a window's edge, a reminder's day) is the date in Norway; "today" is taken from
Europe/Oslo now, never from UTC.
"""

import calendar
from datetime import date, datetime

from django.utils import timezone


def today(now: datetime | None = None) -> date:
    """The date in the trial's time zone (Europe/Oslo) at `now` (default: this moment)."""
    return timezone.localdate(now)


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later; the month's last day where that day does not exist
    (31 January + 1 month = 28 or 29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
