"""The database keeps two counts itself, so that no code path (nor a person at a database prompt) can get them
wrong, and its check constraints refuse what the trial forbids:

- a Family Partner's active families (assignments not ended): never above their capacity
  (visits_partnerprofile.active_families, constraint partner_within_capacity);
- a family's contact time per day: never above 24 hours (visits_contactday, constraint contactday_at_most_24_hours).

It also refuses a Family Partner for any family not randomised to the intervention (a control family's partner
would contaminate the trial): an assignment needs the family's allocation to say "intervention", and allocations
never change (randomization's migration 0002).

Each counting trigger undoes the old row's share and adds the new row's, so inserts, changes (a correction that moves a
contact to another day, an assignment that ends) and deletions all keep the counts right.

On PostgreSQL the daily totals also get an index by day that carries the family and the hours, so that the totals
of every family for a few weeks (the PI's weekly hours) are read from the index alone (bench/run.py).

Careful on SQLite: a later migration that alters a field of visits_assignment or visits_contact makes SQLite
rebuild the table, which drops its triggers; such a migration must create them again (create_triggers).
"""

from django.db import migrations

# "%%" would be one "%" after the driver's formatting; these statements have none.
POSTGRES = [
    """
CREATE OR REPLACE FUNCTION visits_count_active_families() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.ended_on IS NULL THEN
        UPDATE visits_partnerprofile SET active_families = active_families - 1 WHERE id = OLD.partner_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.ended_on IS NULL THEN
        UPDATE visits_partnerprofile SET active_families = active_families + 1 WHERE id = NEW.partner_id;
    END IF;
    RETURN NULL;
END
$$;
""",
    """
CREATE TRIGGER visits_assignment_counts AFTER INSERT OR UPDATE OR DELETE ON visits_assignment
FOR EACH ROW EXECUTE FUNCTION visits_count_active_families();
""",
    """
CREATE OR REPLACE FUNCTION visits_refuse_control_family() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM randomization_allocation WHERE family_id = NEW.family_id AND arm = 'intervention'
    ) THEN
        RAISE EXCEPTION 'only a family randomised to the intervention gets a Family Partner'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
""",
    """
CREATE TRIGGER visits_assignment_intervention_only BEFORE INSERT OR UPDATE OF family_id ON visits_assignment
FOR EACH ROW EXECUTE FUNCTION visits_refuse_control_family();
""",
    """
CREATE OR REPLACE FUNCTION visits_count_contact_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE visits_contactday SET quarters = quarters - OLD.duration_quarters
        WHERE family_id = OLD.family_id AND day = OLD.contact_date;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO visits_contactday (family_id, day, quarters) VALUES (NEW.family_id, NEW.contact_date, NEW.duration_quarters)
        ON CONFLICT (family_id, day) DO UPDATE SET quarters = visits_contactday.quarters + EXCLUDED.quarters;
    END IF;
    RETURN NULL;
END
$$;
""",
    """
CREATE TRIGGER visits_contact_counts AFTER INSERT OR UPDATE OR DELETE ON visits_contact
FOR EACH ROW EXECUTE FUNCTION visits_count_contact_time();
""",
]

_SQLITE_NOT_INTERVENTION = (
    "NOT EXISTS (SELECT 1 FROM randomization_allocation WHERE family_id = NEW.family_id AND arm = 'intervention')"
)
_SQLITE_REFUSE = "SELECT RAISE(ABORT, 'only a family randomised to the intervention gets a Family Partner');"

SQLITE = [
    f"CREATE TRIGGER visits_assignment_intervention_only BEFORE INSERT ON visits_assignment "
    f"WHEN {_SQLITE_NOT_INTERVENTION} BEGIN {_SQLITE_REFUSE} END",
    f"CREATE TRIGGER visits_assignment_intervention_only_update BEFORE UPDATE OF family_id ON visits_assignment "
    f"WHEN {_SQLITE_NOT_INTERVENTION} BEGIN {_SQLITE_REFUSE} END",
    """
CREATE TRIGGER visits_assignment_inserted AFTER INSERT ON visits_assignment WHEN NEW.ended_on IS NULL BEGIN
    UPDATE visits_partnerprofile SET active_families = active_families + 1 WHERE id = NEW.partner_id;
END
""",
    """
CREATE TRIGGER visits_assignment_updated AFTER UPDATE ON visits_assignment BEGIN
    UPDATE visits_partnerprofile SET active_families = active_families - 1 WHERE id = OLD.partner_id AND OLD.ended_on IS NULL;
    UPDATE visits_partnerprofile SET active_families = active_families + 1 WHERE id = NEW.partner_id AND NEW.ended_on IS NULL;
END
""",
    """
CREATE TRIGGER visits_assignment_deleted AFTER DELETE ON visits_assignment WHEN OLD.ended_on IS NULL BEGIN
    UPDATE visits_partnerprofile SET active_families = active_families - 1 WHERE id = OLD.partner_id;
END
""",
    """
CREATE TRIGGER visits_contact_inserted AFTER INSERT ON visits_contact BEGIN
    INSERT INTO visits_contactday (family_id, day, quarters) VALUES (NEW.family_id, NEW.contact_date, NEW.duration_quarters)
    ON CONFLICT (family_id, day) DO UPDATE SET quarters = quarters + excluded.quarters;
END
""",
    """
CREATE TRIGGER visits_contact_updated AFTER UPDATE ON visits_contact BEGIN
    UPDATE visits_contactday SET quarters = quarters - OLD.duration_quarters
    WHERE family_id = OLD.family_id AND day = OLD.contact_date;
    INSERT INTO visits_contactday (family_id, day, quarters) VALUES (NEW.family_id, NEW.contact_date, NEW.duration_quarters)
    ON CONFLICT (family_id, day) DO UPDATE SET quarters = quarters + excluded.quarters;
END
""",
    """
CREATE TRIGGER visits_contact_deleted AFTER DELETE ON visits_contact BEGIN
    UPDATE visits_contactday SET quarters = quarters - OLD.duration_quarters
    WHERE family_id = OLD.family_id AND day = OLD.contact_date;
END
""",
]

POSTGRES.append("CREATE INDEX visits_contactday_day_covering ON visits_contactday (day) INCLUDE (family_id, quarters)")

DROP_POSTGRES = [
    "DROP TRIGGER IF EXISTS visits_assignment_intervention_only ON visits_assignment",
    "DROP FUNCTION IF EXISTS visits_refuse_control_family()",
    "DROP INDEX IF EXISTS visits_contactday_day_covering",
    "DROP TRIGGER IF EXISTS visits_assignment_counts ON visits_assignment",
    "DROP FUNCTION IF EXISTS visits_count_active_families()",
    "DROP TRIGGER IF EXISTS visits_contact_counts ON visits_contact",
    "DROP FUNCTION IF EXISTS visits_count_contact_time()",
]
SQLITE_TRIGGERS = [
    "visits_assignment_intervention_only",
    "visits_assignment_intervention_only_update",
    "visits_assignment_inserted",
    "visits_assignment_updated",
    "visits_assignment_deleted",
    "visits_contact_inserted",
    "visits_contact_updated",
    "visits_contact_deleted",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in POSTGRES if vendor == "postgresql" else SQLITE if vendor == "sqlite" else []:
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = DROP_POSTGRES
    elif vendor == "sqlite":
        statements = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    else:
        statements = []
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("visits", "0001_initial"), ("randomization", "0002_immutable_entries_and_allocations")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
