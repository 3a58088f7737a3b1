"""On SQLite (development and `make test` without PostgreSQL), the stopped-assessment trigger refuses updates only,
as the randomisation's immutability triggers do: Django's test runner empties SQLite tables with DELETE (PostgreSQL's
TRUNCATE fires no row triggers), and a refused DELETE left every later test that needs an empty database failing.
PostgreSQL keeps refusing both (0002)."""

from django.db import migrations

STOPPED_IS_FINAL = "a stopped assessment cannot be changed"


def drop_delete_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS followups_assessment_stopped_not_deleted")


def restore_delete_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            "CREATE TRIGGER followups_assessment_stopped_not_deleted BEFORE DELETE ON followups_assessment "
            f"WHEN OLD.status = 'stopped' BEGIN SELECT RAISE(ABORT, '{STOPPED_IS_FINAL}'); END"
        )


class Migration(migrations.Migration):
    dependencies = [("followups", "0002_stopped_is_final")]

    operations = [migrations.RunPython(drop_delete_trigger, restore_delete_trigger)]
