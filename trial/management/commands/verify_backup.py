"""Check a restored database against its backup's manifest, then verify every allocation list."""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from trial import backups


class Command(BaseCommand):
    help = (
        "Compare the database of DATABASE_URL (a restored backup) with the backup's manifest: the encryption keys, "
        "the migrations, the row counts and each allocation list's commitment; then recompute every allocation "
        "list from its seeds (verify_allocation_list). Exits 1 on any difference. restore_backup runs it."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path, help="The backup's manifest (.json) or dump (.dump).")

    def handle(self, *args, backup: Path, **options):
        manifest, _dump = backups.readable_backup(backup)
        # Before the lists are verified: a verification is itself a row.
        state = backups.manifest_state()
        differences = []
        for section in ("migrations", "row_counts", "allocation_lists"):
            if state[section] != manifest[section]:
                differences.append(f"{section}: the backup has {manifest[section]}, this database {state[section]}")
        if differences:
            for difference in differences:
                self.stdout.write(self.style.ERROR(f"  - {difference}"))
            raise CommandError("The restored database differs from the backup's manifest.")
        counts = ", ".join(f"{label} {count}" for label, count in state["row_counts"].items())
        self.stdout.write(f"The database matches the manifest of {manifest['made_at']}: {counts}.")
        call_command("verify_allocation_list", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(self.style.SUCCESS("The backup is restored and verified."))
