"""Restore a backup into a fresh, empty PostgreSQL database, and verify it there (the restore drill)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import dj_database_url
import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trial import backups


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the empty database given by --database-url (pg_restore), "
        "then verify it there (verify_backup): the manifest's counts and commitments, and every allocation list "
        "recomputed from its seeds. Refuses when ENCRYPTION_KEYS lacks a key of the backup. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path, help="The backup's manifest (.json) or dump (.dump).")
        parser.add_argument(
            "--database-url", required=True, help="A fresh, empty database to restore into (never the live one)."
        )

    def handle(self, *args, backup: Path, database_url: str, **options):
        # First, before anything is written: a backup the keys cannot read is not worth restoring.
        _manifest, dump = backups.readable_backup(backup)
        if not dump.exists():
            raise CommandError(f"The dump {dump} named by the manifest is missing.")
        target = dj_database_url.parse(database_url)
        self.require_empty(database_url)
        command = [backups.postgres_program("pg_restore"), "--exit-on-error", "--single-transaction"]
        command += ["--no-owner", "--no-privileges", "--dbname", target["NAME"], str(dump)]
        result = subprocess.run(  # noqa: S603 (an argv of our own, no shell)
            command, capture_output=True, text=True, env=backups.libpq_environment(target), check=False
        )
        if result.returncode != 0:
            raise CommandError(f"pg_restore failed:\n{result.stderr}")
        self.stdout.write(f"Restored {dump.name} into {target['NAME']}.")
        self.verify(backup, database_url)

    def require_empty(self, database_url: str) -> None:
        try:
            target = psycopg2.connect(database_url)
        except psycopg2.Error as error:
            raise CommandError(f"Cannot connect to --database-url: {error}".strip()) from None
        try:
            with target.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                tables = cursor.fetchone()[0]
        finally:
            target.close()
        if tables:
            raise CommandError(
                f"Refusing: the database of --database-url has {tables} tables. Restore into a fresh, empty database."
            )

    def verify(self, backup: Path, database_url: str) -> None:
        """verify_backup in a process of its own against the restored database. Its Redis and cache are none:
        whatever the verification queues stays in a throwaway folder, away from the live app's queue."""
        with tempfile.TemporaryDirectory(prefix="trial-restore-") as scratch:
            env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL="", TRIAL_VAR_DIR=scratch)
            result = subprocess.run(  # noqa: S603 (an argv of our own, no shell)
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "verify_backup", str(backup.resolve())],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
        self.stdout.write(result.stdout)
        if result.returncode != 0:
            self.stderr.write(result.stderr)
            raise CommandError("The restored database did not verify: see above.")
