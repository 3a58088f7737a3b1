"""The beat's reminder jobs (CELERY_BEAT_SCHEDULE in trial/settings.py): thin, they call the sweep."""

from celery import shared_task

from reminders import services
from trial.dates import today


@shared_task
def sweep(part: str = "daily") -> int:
    """`daily` (06:00 Europe/Oslo): the daily reminders, and, on days other than Monday, the Family Partners'
    weekly summary if Monday's job did not make it (the unique key makes that a no-op otherwise). `weekly`
    (Monday 07:00): the weekly summary. Returns the number of messages made."""
    on = today()
    if part == "weekly":
        return services.sweep(on, daily=False, weekly=True).total
    return services.sweep(on, daily=True, weekly=on.weekday() != 0).total
