"""Re-encrypt every encrypted value under the first key of ENCRYPTION_KEYS, so that the older keys can be dropped.

Generic over every EncryptedTextField of every installed model (the django-simple-history tables' copies too), found
through the app registry: a new encrypted field is rotated without a change here. Safe while the app serves:
- each value is replaced by a compare-and-swap (UPDATE ... WHERE pk = %s AND column = <the ciphertext read>), so a
  value a user changed meanwhile is left as the user wrote it, never overwritten with the old text;
- the rows are changed in SQL, not through the models: no history record is made, no `modified` time moves;
- batches are keyset-paginated by primary key, each in a short transaction of its own.
Resumable: a value that already decrypts with the first key alone is skipped, so a run after an interruption
continues where the last one stopped. docs/deployment.md has the operator's procedure.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from trial.encryption import EncryptedTextField

# How many unreadable values the report names before it only counts them.
NAMED_PROBLEMS = 20


@dataclass
class EncryptedTable:
    """A model's table and its encrypted columns."""

    label: str
    table: str
    pk: str
    columns: list[str]

    @property
    def quoted(self) -> tuple[str, str, list[str]]:
        quote = connection.ops.quote_name
        return quote(self.table), quote(self.pk), [quote(column) for column in self.columns]


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    problems: list[str] = field(default_factory=list)


def encrypted_tables() -> list[EncryptedTable]:
    tables = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        columns = [f.column for f in meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if columns:
            assert isinstance(meta.pk, models.Field)
            tables.append(EncryptedTable(meta.label, meta.db_table, meta.pk.column, columns))
    return sorted(tables, key=lambda table: table.label)


def batches(table: EncryptedTable, batch_size: int) -> Iterator[list[tuple]]:
    """The table's rows (pk, ciphertexts...) in batches, by primary key; each batch read in its own transaction."""
    name, pk, columns = table.quoted
    last = None
    while True:
        where = f"WHERE {pk} > %s " if last is not None else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk}, {', '.join(columns)} FROM {name} {where}ORDER BY {pk} LIMIT %s",  # noqa: S608
                [last, batch_size] if last is not None else [batch_size],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def is_under(key: Fernet | MultiFernet, ciphertext: str) -> bool:
    try:
        key.decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (identifiers, notes, seeds, sealed arms and their history copies) under "
        "the first key of ENCRYPTION_KEYS, in batches, then verify that the first key alone reads everything. "
        "Put the new key first, restart every process, then run this; it can be interrupted and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500).")
        parser.add_argument(
            "--verify-only", action="store_true", help="Change nothing: say whether the older keys may be dropped."
        )

    def handle(self, *args, batch_size: int, verify_only: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "rotate_encryption_key is for PostgreSQL. A development database (SQLite) keeps its key in "
                "var/encryption.key: load the demo again under a new key instead."
            )
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        keys = list(settings.ENCRYPTION_KEYS)
        if not keys:
            raise CommandError("ENCRYPTION_KEYS is empty: put the new key first, then the old one(s).")
        first = Fernet(keys[0].encode())
        every_key = MultiFernet([Fernet(key.encode()) for key in keys])
        tables = encrypted_tables()
        if not verify_only:
            if len(keys) == 1:
                self.stdout.write("ENCRYPTION_KEYS holds one key: every value should already be under it.")
            for table in tables:
                self.rotate(table, first, every_key, batch_size)
        self.verify(tables, first, every_key, batch_size)

    def rotate(self, table: EncryptedTable, first: Fernet, every_key: MultiFernet, batch_size: int) -> Tally:
        name, _pk, _columns = table.quoted
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608
            total = cursor.fetchone()[0]
        tally, done = Tally(), 0
        for rows in batches(table, batch_size):
            self.rotate_batch(table, rows, first, every_key, tally)
            done += len(rows)
            self.stdout.write(
                f"{table.label}: {done}/{total} rows, {tally.rotated} values re-encrypted, "
                f"{tally.current} already under the first key"
            )
        if total == 0:
            self.stdout.write(f"{table.label}: no rows")
        if tally.changed_meanwhile:
            self.stdout.write(
                f"{table.label}: {tally.changed_meanwhile} values were changed by a user meanwhile and were left as "
                "they were written (the verification below says whether they need an older key)."
            )
        return tally

    def rotate_batch(
        self, table: EncryptedTable, rows: list[tuple], first: Fernet, every_key: MultiFernet, tally: Tally
    ) -> None:
        name, pk, columns = table.quoted
        with transaction.atomic(), connection.cursor() as cursor:
            # The immutable tables' trigger lets this transaction, and no other, change their ciphertext columns
            # (randomization migration 0006).
            cursor.execute("SET LOCAL trial.encryption_key_rotation = 'on'")
            for row in rows:
                for column, ciphertext in zip(columns, row[1:], strict=True):
                    if not ciphertext:
                        continue
                    if is_under(first, ciphertext):
                        tally.current += 1
                        continue
                    try:
                        rotated = every_key.rotate(ciphertext.encode()).decode()
                    except InvalidToken:
                        continue  # under no key we have: the verification names it
                    # Compare-and-swap: a value a user saved since it was read is theirs, and stays.
                    cursor.execute(
                        f"UPDATE {name} SET {column} = %s WHERE {pk} = %s AND {column} = %s",  # noqa: S608
                        [rotated, row[0], ciphertext],
                    )
                    if cursor.rowcount == 1:
                        tally.rotated += 1
                    else:
                        tally.changed_meanwhile += 1

    def verify(self, tables: list[EncryptedTable], first: Fernet, every_key: MultiFernet, batch_size: int) -> None:
        older: list[str] = []
        unreadable: list[str] = []
        checked = 0
        for table in tables:
            for rows in batches(table, batch_size):
                for row in rows:
                    for column, ciphertext in zip(table.columns, row[1:], strict=True):
                        if not ciphertext:
                            continue
                        checked += 1
                        if is_under(first, ciphertext):
                            continue
                        where = f"{table.label} {table.pk}={row[0]} {column}"
                        (older if is_under(every_key, ciphertext) else unreadable).append(where)
        if not older and not unreadable:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Verified: all {checked} encrypted values decrypt with the first key of ENCRYPTION_KEYS alone. "
                    "The older keys may now be dropped from ENCRYPTION_KEYS (then restart every process)."
                )
            )
            return
        for problem in older[:NAMED_PROBLEMS]:
            self.stdout.write(f"  still under an older key: {problem}")
        for problem in unreadable[:NAMED_PROBLEMS]:
            self.stdout.write(f"  under no key of ENCRYPTION_KEYS: {problem}")
        message = []
        if older:
            message.append(
                f"{len(older)} values still need an older key: keep every key, and run rotate_encryption_key again"
            )
        if unreadable:
            message.append(
                f"{len(unreadable)} values decrypt with no key of ENCRYPTION_KEYS: find the key they were written "
                "under before dropping any"
            )
        raise CommandError("Do not drop the older keys. " + "; ".join(message) + ".")
