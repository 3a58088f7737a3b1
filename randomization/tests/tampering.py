"""Tampering with stored lists as someone with the database owner's rights could: the records' immutability
triggers switched off for a moment, so that tests can check that verification and the pages notice."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def trigger_off(table: str) -> Iterator[None]:
    """`table`'s immutability trigger off inside the block (on PostgreSQL every trigger of this session); it
    comes back on after, also on an error."""
    trigger = f"{table}_immutable"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What a superuser restoring or "repairing" data would do: no ordinary trigger fires in this session.
            # (ALTER TABLE ... DISABLE TRIGGER would wait for the foreign keys' deferred checks of the test's
            # own transaction.)
            cursor.execute("SET session_replication_role = replica")
            try:
                yield
            finally:
                cursor.execute("SET session_replication_role = origin")
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s", [trigger])
            (definition,) = cursor.fetchone()
            cursor.execute(f"DROP TRIGGER {trigger}")
            try:
                yield
            finally:
                cursor.execute(definition)
