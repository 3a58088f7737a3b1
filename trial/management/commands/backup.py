"""Write a consistent dump of the trial's PostgreSQL database, and its manifest beside it."""

import json
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from trial import backups


class Command(BaseCommand):
    help = (
        "Dump the database (pg_dump custom format, from DATABASE_URL) and write a manifest beside it: the time, "
        "the migrations applied, the row counts of the key tables, each allocation list's commitment and the "
        "fingerprints of the encryption keys. Restore it with restore_backup. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", type=Path, help="The folder to write into (default: backups/ in TRIAL_VAR_DIR)."
        )

    def handle(self, *args, output: Path | None, **options):
        backups.require_postgresql()
        folder = output or settings.VAR_DIR / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        started = timezone.now()
        dump = folder / f"trial-{started:%Y%m%dT%H%M%SZ}.dump"
        if dump.exists():
            raise CommandError(f"{dump} exists already: wait a second, or choose another --output.")
        # The manifest is read in the very snapshot pg_dump dumps: a transaction that stays open until the dump is
        # done exports its snapshot, and pg_dump takes it (--snapshot). Counts then match whatever users do.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            state = backups.manifest_state()
            self.dump(dump, snapshot)
        manifest = {
            "format": 1,
            "dump": dump.name,
            "made_at": started.isoformat(),
            "database": connection.settings_dict["NAME"],
            # The first encrypts; a restore needs every one of them (values may still be under an older key).
            "encryption_key_fingerprints": backups.current_fingerprints(),
            **state,
        }
        manifest_file = backups.manifest_path(dump)
        manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
        self.stdout.write(self.style.SUCCESS(f"Wrote {dump} ({dump.stat().st_size} bytes) and {manifest_file}."))
        self.stdout.write(
            f"Encryption key fingerprint(s): {', '.join(manifest['encryption_key_fingerprints'])}. Keep the keys "
            "apart from the backup: without them its identifiers are unreadable."
        )

    def dump(self, dump: Path, snapshot: str) -> None:
        database = connection.settings_dict
        command = [backups.postgres_program("pg_dump"), "--format=custom", f"--snapshot={snapshot}"]
        command += ["--no-owner", "--no-privileges", f"--file={dump}", "--dbname", database["NAME"]]
        env = backups.libpq_environment(database)
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603 (our argv)
        if result.returncode != 0:
            dump.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed:\n{result.stderr}")
