"""The trial settings' starting values as the first row of their history.

The settings row was seeded (0002) without a history row, so the first change kept only the new values: what they
had been before was lost. This records the row as it stands when no history exists yet, so that every later change
reads as old -> new (docs/decisions.md)."""

from django.db import migrations
from django.utils import timezone

STARTING_VALUES = "Starting values"


def record_starting_values(apps, schema_editor):
    TrialSettings = apps.get_model("trial", "TrialSettings")
    HistoricalTrialSettings = apps.get_model("trial", "HistoricalTrialSettings")
    for row in TrialSettings.objects.all():
        if HistoricalTrialSettings.objects.filter(id=row.pk).exists():
            continue
        values = {field.attname: getattr(row, field.attname) for field in TrialSettings._meta.concrete_fields}
        HistoricalTrialSettings.objects.create(
            **values,
            history_date=timezone.now(),
            history_type="+",
            history_change_reason=STARTING_VALUES,
            history_user=None,
        )


class Migration(migrations.Migration):
    dependencies = [("trial", "0005_audit_events_and_no_contact_days")]
    operations = [migrations.RunPython(record_starting_values, migrations.RunPython.noop)]
