"""Writes of the trial-wide records: the trial settings."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils.translation import gettext as _

from trial.models import TrialSettings

# Sent inside the change's transaction, with the settings row locked and saved (arguments: settings, changed (the
# names of the fields written), changed_by): follow-ups recomputes the windows of assessments not yet recorded. A
# receiver's error rolls the change back.
trial_settings_changed = Signal()


def trial_settings_change(*, changes: dict[str, object], reason: str, changed_by: User) -> TrialSettings:
    """Change some of the trial settings, with a reason kept in their history.

    Only the settings named in `changes` are written, on the row as it is now (locked), so that two data managers
    changing different settings at the same moment both keep their change. The settings' rules are
    TrialSettings.clean's, checked on the row as it will be saved. Nothing changed, nothing written."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the settings change.")})
    with transaction.atomic():
        row = TrialSettings.objects.select_for_update().get(pk=TrialSettings.current().pk)
        changed = {name: value for name, value in changes.items() if getattr(row, name) != value}
        if not changed:
            return row
        for name, value in changed.items():
            setattr(row, name, value)
        row.full_clean()
        row._change_reason = reason  # type: ignore[attr-defined]  # read by simple-history for the history row
        row._history_user = changed_by  # type: ignore[attr-defined]
        row.save(update_fields=list(changed))
        trial_settings_changed.send(sender=TrialSettings, settings=row, changed=set(changed), changed_by=changed_by)
    return row
