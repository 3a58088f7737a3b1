"""`manage.py send_reminders [--date YYYY-MM-DD]`: one sweep of the reminders, for sites that prefer cron to the
beat. Prints what it made; running it twice makes nothing the second time."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from notifications.kinds import get_kind
from reminders import services
from trial.dates import today


class Command(BaseCommand):
    help = "Write every reminder due today (or on --date) into the outbox; the delivery sends them."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="the day to sweep for, YYYY-MM-DD (default: today in Europe/Oslo)")
        parser.add_argument(
            "--part",
            choices=["all", "daily", "weekly"],
            default="all",
            help="the daily reminders, the Family Partners' weekly summary, or both (default)",
        )

    def handle(self, *args, **options):
        on = today()
        if options["date"]:
            try:
                on = date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(f"Not a date (YYYY-MM-DD): {options['date']}") from None
        part = options["part"]
        result = services.sweep(on, daily=part in ("all", "daily"), weekly=part in ("all", "weekly"))
        self.stdout.write(f"Reminders for {on.isoformat()}: {result.total} made.")
        for code, count in sorted(result.made.items()):
            kind = get_kind(code)
            self.stdout.write(f"  {count:>5}  {kind.label if kind else code}")
