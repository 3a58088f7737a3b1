"""Entries of an allocation list and allocations never change, and are never deleted: the database itself
refuses, whatever code (or person at a database prompt) tries.

On SQLite (development only) the triggers refuse updates; deletions are left to the foreign keys, because
Django's test runner empties SQLite tables with DELETE (PostgreSQL's TRUNCATE fires no row triggers)."""

from django.db import migrations

TABLES = ["randomization_allocationentry", "randomization_allocation"]

# "%%" is one "%" once the schema editor has passed the statement through the driver's formatting.
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION randomization_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%% rows cannot be changed or deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION randomization_refuse_change()"
            )
    elif schema_editor.connection.vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows cannot be changed'); END"
            )


def drop_triggers(apps, schema_editor):
    for table in TABLES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        elif schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS randomization_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("randomization", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
