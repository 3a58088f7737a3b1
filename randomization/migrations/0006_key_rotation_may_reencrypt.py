"""The immutable tables' encrypted columns (a generation's seed, an entry's sealed arm) may be re-encrypted under a
new key by `manage.py rotate_encryption_key`, and by nothing else.

The trigger function of 0002 still refuses every change and deletion, except an UPDATE in a transaction that has
said `SET LOCAL trial.encryption_key_rotation = 'on'` and that changes nothing but those ciphertext columns (the
command checks that the new ciphertext decrypts to the same text). SQLite (development only) keeps refusing."""

from django.db import migrations

REFUSE_EVERY_CHANGE = """
CREATE OR REPLACE FUNCTION randomization_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%% rows cannot be changed or deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
"""

ALLOW_KEY_ROTATION = """
CREATE OR REPLACE FUNCTION randomization_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND current_setting('trial.encryption_key_rotation', true) = 'on'
        AND (to_jsonb(NEW) - ARRAY['seed', 'sealed_arm']) = (to_jsonb(OLD) - ARRAY['seed', 'sealed_arm'])
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '%% rows cannot be changed or deleted', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;
"""


def allow_key_rotation(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW_KEY_ROTATION)


def refuse_every_change(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REFUSE_EVERY_CHANGE)


class Migration(migrations.Migration):
    dependencies = [("randomization", "0005_design_reason")]

    operations = [migrations.RunPython(allow_key_rotation, refuse_every_change)]
