"""The database refuses a Family Partner for a withdrawn family, as it refuses one for a control family.

A new assignment (or one moved to another family) needs the family's allocation to say "intervention" (migration
0002) and, now, the family to be randomised and not withdrawn: a withdrawn family is no longer visited. Ending an
assignment (a withdrawal ends the family's) keeps its family, so the check does not stand in its way (an UPDATE
that writes the same family_id, as every ORM save does, is not checked).

Each refusal has its own message, which the services read to tell the researcher which rule it was
(visits.models.REFUSED_NOT_INTERVENTION, REFUSED_NOT_RANDOMISED).
"""

from django.db import migrations

NOT_INTERVENTION = "only a family randomised to the intervention gets a Family Partner"
NOT_RANDOMISED = "only a randomised family that has not withdrawn gets a Family Partner"


def _postgres_function(*, with_status: bool) -> str:
    status_check = f"""
    IF NOT EXISTS (SELECT 1 FROM families_family WHERE id = NEW.family_id AND status = 'randomised') THEN
        RAISE EXCEPTION '{NOT_RANDOMISED}' USING ERRCODE = 'check_violation';
    END IF;"""
    return f"""
CREATE OR REPLACE FUNCTION visits_refuse_control_family() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.family_id = OLD.family_id THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM randomization_allocation WHERE family_id = NEW.family_id AND arm = 'intervention'
    ) THEN
        RAISE EXCEPTION '{NOT_INTERVENTION}' USING ERRCODE = 'check_violation';
    END IF;{status_check if with_status else ""}
    RETURN NEW;
END
$$;
"""


def _sqlite_triggers(*, with_status: bool) -> list[str]:
    # One trigger per event whose body checks in order, so that a family refused for both reasons always gets the
    # first message (SQLite runs several triggers of one event in no documented order).
    checks = (
        "SELECT RAISE(ABORT, '{message}') WHERE NOT EXISTS "
        "(SELECT 1 FROM randomization_allocation WHERE family_id = NEW.family_id AND arm = 'intervention');"
    ).format(message=NOT_INTERVENTION)
    if with_status:
        checks += (
            " SELECT RAISE(ABORT, '{message}') WHERE NOT EXISTS "
            "(SELECT 1 FROM families_family WHERE id = NEW.family_id AND status = 'randomised');"
        ).format(message=NOT_RANDOMISED)
    return [
        "DROP TRIGGER IF EXISTS visits_assignment_intervention_only",
        "DROP TRIGGER IF EXISTS visits_assignment_intervention_only_update",
        f"CREATE TRIGGER visits_assignment_intervention_only BEFORE INSERT ON visits_assignment BEGIN {checks} END",
        f"CREATE TRIGGER visits_assignment_intervention_only_update BEFORE UPDATE OF family_id ON visits_assignment "
        f"WHEN NEW.family_id IS NOT OLD.family_id BEGIN {checks} END",
    ]


def _run(schema_editor, *, with_status: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = [_postgres_function(with_status=with_status)]
    elif vendor == "sqlite":
        statements = _sqlite_triggers(with_status=with_status)
    else:
        statements = []
    for statement in statements:
        schema_editor.execute(statement)


def refuse_withdrawn_families(apps, schema_editor):
    _run(schema_editor, with_status=True)


def refuse_control_families_only(apps, schema_editor):
    _run(schema_editor, with_status=False)


class Migration(migrations.Migration):
    dependencies = [("visits", "0002_counting_triggers"), ("families", "0002_randomised_status")]

    operations = [migrations.RunPython(refuse_withdrawn_families, refuse_control_families_only)]
