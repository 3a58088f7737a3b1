"""The trial's three sites (the registry's strata) and its settings row with the defaults of docs/trial-rules.md."""

from django.db import migrations

SITES = [
    ("OEI", "Øvre Eiker"),
    ("LAR", "Larvik"),
    ("LIL", "Lillehammer"),
]


def seed(apps, schema_editor):
    Site = apps.get_model("trial", "Site")
    TrialSettings = apps.get_model("trial", "TrialSettings")
    for code, name in SITES:
        Site.objects.get_or_create(code=code, defaults={"name": name})
    TrialSettings.objects.get_or_create(singleton=True)


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
