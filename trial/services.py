"""Writes of the trial-wide records: the trial settings and the sites' recruitment state."""

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils.translation import gettext as _

from trial.models import RecruitmentState, Site, TrialSettings
from trial.roles import Role, has_role

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


# Who opens, pauses and closes recruitment at a site (the page asks the same; the service is where it holds).
RECRUITMENT_STATE_ROLES = (Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR)


def site_set_recruitment_state(*, site: Site, state: str, reason: str, changed_by: User) -> Site:
    """Open, pause or close recruitment at a site, with a reason kept as the history's change reason (the
    feasibility report reads the months open from that history; families.services.family_register refuses a
    site that is not open, under the same row lock)."""
    if not has_role(changed_by, *RECRUITMENT_STATE_ROLES):
        raise PermissionDenied
    if state not in RecruitmentState.values:
        raise ValidationError({"state": _("Choose open, paused or closed.")})
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the site's recruitment changes.")})
    with transaction.atomic():
        # The row registrations lock too: a registration racing this change either finishes before it (while
        # the site was open) or sees the new state and is refused.
        locked = Site.objects.select_for_update().get(pk=site.pk)
        if locked.recruitment_state == state:
            raise ValidationError(
                {
                    "state": _("Recruitment at %(site)s is already %(state)s.")
                    % {"site": locked.name, "state": RecruitmentState(state).label.lower()}
                }
            )
        locked.recruitment_state = state
        locked.recruitment_state_reason = reason
        locked._change_reason = reason  # type: ignore[attr-defined]  # read by simple-history for the history row
        locked._history_user = changed_by  # type: ignore[attr-defined]
        locked.save(update_fields=["recruitment_state", "recruitment_state_reason"])
    return locked
