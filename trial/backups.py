"""What `manage.py backup`, `restore_backup` and `verify_backup` share: the manifest written beside each dump, and
the programs of PostgreSQL they run.

A manifest says what a restored copy must hold: the migrations applied, the row counts of the tables the trial
depends on, each allocation list's commitment, and the fingerprints of the encryption keys (never the keys: a
backup without its key is unreadable, by design). Counts and commitments are read in the dump's own snapshot, so
they match the dump exactly however busy the app is.

The upper apps' models are looked up by label through the registry, so that `trial` imports none of them.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

# The tables whose rows a restore must bring back, by model label; a label whose app is not installed is left out.
KEY_TABLES = [
    "auth.User",
    "families.Family",
    "families.FamilyIdentity",
    "families.Screening",
    "families.Consent",
    "families.Withdrawal",
    "randomization.AllocationList",
    "randomization.ListSegment",
    "randomization.AllocationEntry",
    "randomization.Allocation",
    "randomization.Verification",
    "visits.Assignment",
    "visits.Contact",
    "followups.Assessment",
    "notifications.Message",
]

POSTGRESQL_ONLY = (
    "Backups are for PostgreSQL. A development database (SQLite) is a file: stop the app and copy {path} "
    "together with var/encryption.key."
)


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise CommandError(POSTGRESQL_ONLY.format(path=connection.settings_dict["NAME"]))


def key_fingerprint(key: str) -> str:
    """A key's SHA-256, first 16 hex digits: enough to tell keys apart, nothing to recover one from."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def current_fingerprints() -> list[str]:
    return [key_fingerprint(key) for key in settings.ENCRYPTION_KEYS]


def postgres_program(name: str) -> str:
    """pg_dump or pg_restore: from PG_BIN when set (the cluster's major version, e.g. /usr/lib/postgresql/15/bin),
    otherwise from PATH."""
    folder = os.environ.get("PG_BIN")
    found = shutil.which(name, path=folder) if folder else shutil.which(name)
    if found is None:
        raise CommandError(f"{name} was not found (on PATH, or in PG_BIN={folder or ''}): install postgresql-client.")
    return found


def applied_migrations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        return [f"{app}.{name}" for app, name in cursor.fetchall()]


def row_counts() -> dict[str, int]:
    counts = {}
    for label in KEY_TABLES:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        counts[label] = model._base_manager.count()
    return counts


def allocation_list_commitments() -> dict[str, dict[str, Any]]:
    """Each site's list: its commitment (the SHA-256 digest the verification checks), length and entries used."""
    try:
        allocation_list = apps.get_model("randomization", "AllocationList")
    except LookupError:
        return {}
    return {
        code: {"commitment": commitment, "length": length, "used": used}
        for code, commitment, length, used in allocation_list._base_manager.order_by("site__code").values_list(
            "site__code", "commitment", "length", "used"
        )
    }


def manifest_state() -> dict[str, Any]:
    """What a restored copy must hold; compared key by key by verify_backup."""
    return {
        "migrations": applied_migrations(),
        "row_counts": row_counts(),
        "allocation_lists": allocation_list_commitments(),
    }


def refuse_unreadable(manifest: dict[str, Any]) -> None:
    """A backup whose values were written under a key we do not hold would restore as unreadable ciphertext."""
    missing = [
        fingerprint
        for fingerprint in manifest["encryption_key_fingerprints"]
        if fingerprint not in current_fingerprints()
    ]
    if missing:
        raise CommandError(
            f"Refusing: this backup was made under encryption key(s) {', '.join(missing)}, which ENCRYPTION_KEYS "
            f"does not hold (it holds {', '.join(current_fingerprints())}). Its identifiers, notes and seeds would be "
            "unreadable: set ENCRYPTION_KEYS to include the key(s) of the backup first."
        )


def manifest_path(path: Path) -> Path:
    """The manifest of a dump (trial-....dump -> trial-....json), or the manifest itself."""
    return path if path.suffix == ".json" else path.with_suffix(".json")


def libpq_environment(database: Mapping[str, Any]) -> dict[str, str]:
    """The environment for pg_dump and pg_restore: the connection of DATABASE_URL, the password never on a command
    line (where `ps` would show it)."""
    env = dict(os.environ)
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if database.get(key):
            env[variable] = str(database[key])
    return env


def read_manifest(path: Path) -> tuple[dict[str, Any], Path]:
    """The manifest of a backup (given the dump or the manifest) and its dump's path."""
    manifest_file = manifest_path(path)
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"No readable manifest at {manifest_file}: {error}") from None
    return manifest, manifest_file.parent / manifest["dump"]


def readable_backup(path: Path) -> tuple[dict[str, Any], Path]:
    """The manifest and dump of a backup that this database server and these keys can restore, or a CommandError
    saying why not (not PostgreSQL; a key of the backup missing from ENCRYPTION_KEYS)."""
    require_postgresql()
    manifest, dump = read_manifest(path)
    refuse_unreadable(manifest)
    return manifest, dump
