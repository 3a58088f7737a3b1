"""Indexes for the week tables (bench/run.py): the family foreign keys lose their own indexes, which the
composite indexes leading with the family already cover, and on PostgreSQL the daily totals get an index by
day that carries the family and the hours, so that the totals of every family for a few weeks (the PI's weekly
hours) are read from the index alone instead of scanning every day ever logged."""

import django.db.models.deletion
from django.db import migrations, models

COVERING_INDEX = "visits_contactday_day_covering"


def create_covering_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {COVERING_INDEX} ON visits_contactday (day) INCLUDE (family_id, quarters)"
        )


def drop_covering_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {COVERING_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("families", "0002_randomised_status"),
        ("visits", "0002_counting_triggers"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contact",
            name="family",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="contacts",
                to="families.family",
                verbose_name="family",
            ),
        ),
        migrations.AlterField(
            model_name="contactday",
            name="family",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="families.family",
                verbose_name="family",
            ),
        ),
        migrations.RunPython(create_covering_index, drop_covering_index),
    ]
