"""A list's generations (with their seeds), its verifications, and the annotations and unblindings of
randomised families are records: once written they never change, and are never deleted. As for entries and
allocations (0002), the database refuses, whatever code or person tries: on PostgreSQL both changes and
deletions, on SQLite (development only) changes."""

from django.db import migrations

TABLES = [
    "randomization_listsegment",
    "randomization_verification",
    "randomization_allocationannotation",
    "randomization_unblinding",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            # randomization_refuse_change() is migration 0002's.
            schema_editor.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION randomization_refuse_change()"
            )
        elif vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows cannot be changed'); END"
            )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_immutable")


class Migration(migrations.Migration):
    dependencies = [("randomization", "0002_immutable_entries_and_allocations")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
