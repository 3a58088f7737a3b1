"""The database keeps a stopped assessment as it is: a withdrawal or a loss to follow-up stopped it, and no later
write (a recording, a correction, a recomputed window) may change or remove it.

The service refuses first, with a message in the user's words; this trigger stands behind it (the message is
read by followups.services to name the rule).
"""

from django.db import migrations

STOPPED_IS_FINAL = "a stopped assessment cannot be changed"

_POSTGRES = f"""
CREATE OR REPLACE FUNCTION followups_stopped_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'stopped' THEN
        RAISE EXCEPTION '{STOPPED_IS_FINAL}' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS followups_assessment_stopped_is_final ON followups_assessment;
CREATE TRIGGER followups_assessment_stopped_is_final BEFORE UPDATE OR DELETE ON followups_assessment
    FOR EACH ROW EXECUTE FUNCTION followups_stopped_is_final();
"""

_POSTGRES_DROP = """
DROP TRIGGER IF EXISTS followups_assessment_stopped_is_final ON followups_assessment;
DROP FUNCTION IF EXISTS followups_stopped_is_final();
"""

_SQLITE = [
    f"CREATE TRIGGER followups_assessment_stopped_is_final BEFORE UPDATE ON followups_assessment "
    f"WHEN OLD.status = 'stopped' BEGIN SELECT RAISE(ABORT, '{STOPPED_IS_FINAL}'); END",
    f"CREATE TRIGGER followups_assessment_stopped_not_deleted BEFORE DELETE ON followups_assessment "
    f"WHEN OLD.status = 'stopped' BEGIN SELECT RAISE(ABORT, '{STOPPED_IS_FINAL}'); END",
]
_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS followups_assessment_stopped_is_final",
    "DROP TRIGGER IF EXISTS followups_assessment_stopped_not_deleted",
]


def _run(schema_editor, *, postgres: list[str], sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    for statement in postgres if vendor == "postgresql" else sqlite if vendor == "sqlite" else []:
        schema_editor.execute(statement)


def add(apps, schema_editor):
    _run(schema_editor, postgres=[_POSTGRES], sqlite=_SQLITE)


def drop(apps, schema_editor):
    _run(schema_editor, postgres=[_POSTGRES_DROP], sqlite=_SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("followups", "0001_initial")]

    operations = [migrations.RunPython(add, drop)]
