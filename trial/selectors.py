"""Reads of the trial-wide records: the trial settings and their history."""

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from django.utils.formats import localize

from trial.models import TRIAL_SETTINGS_GROUPS, TrialSettings
from trial.roles import display_name


@dataclass(frozen=True)
class SettingValue:
    name: str
    label: str
    value: str


@dataclass(frozen=True)
class SettingsGroup:
    label: str
    settings: list[SettingValue]


@dataclass(frozen=True)
class FieldChange:
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class SettingsChange:
    when: datetime
    who: str
    reason: str
    fields: list[FieldChange]


def _label(name: str) -> str:
    field = TrialSettings._meta.get_field(name)
    return str(getattr(field, "verbose_name", name))


def _shown(value: object) -> str:
    """A setting's value as a reader writes it: lists as "3, 6, 12", numbers in the page's language."""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(localize(value))


def trial_settings_groups(row: TrialSettings) -> list[SettingsGroup]:
    """The settings' current values, grouped as the page and the admin show them."""
    return [
        SettingsGroup(str(label), [SettingValue(name, _label(name), _shown(getattr(row, name))) for name in names])
        for label, names in TRIAL_SETTINGS_GROUPS
    ]


def trial_settings_changes() -> list[SettingsChange]:
    """Every change of the settings, latest first: who, when, why and each setting's old -> new value.

    The first history row holds the starting values (migration 0006); it is where the first change's old values
    come from, and is not itself a change."""
    names = [name for _group, group_names in TRIAL_SETTINGS_GROUPS for name in group_names]
    rows = list(TrialSettings.history.select_related("history_user").order_by("history_date", "history_id"))
    changes = []
    for before, after in pairwise(rows):
        fields = [
            FieldChange(_label(name), _shown(getattr(before, name)), _shown(getattr(after, name)))
            for name in names
            if getattr(before, name) != getattr(after, name)
        ]
        changes.append(
            SettingsChange(
                when=after.history_date,
                who=display_name(after.history_user) if after.history_user else "",
                reason=after.history_change_reason or "",
                fields=fields,
            )
        )
    return changes[::-1]
