"""Reads of the trial-wide records: the trial settings and their history, the sites' recruitment state."""

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from django.db.models import QuerySet
from django.utils.formats import localize

from trial.models import TRIAL_SETTINGS_GROUPS, RecruitmentState, Site, TrialSettings
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


@dataclass(frozen=True)
class SiteRecruitment:
    site: Site
    state_label: str
    since: datetime | None  # when the site entered its present state (None: open since the trial started)
    reason: str
    changed_by: str


def site_recruitment_states() -> list[SiteRecruitment]:
    """Every site's recruitment state, since when and why, from the sites' history (two queries)."""
    sites = list(Site.objects.order_by("name"))
    since: dict[int, datetime | None] = {}
    who: dict[int, str] = {}
    rows = Site.history.select_related("history_user").order_by("id", "history_date", "history_id")
    previous: dict[int, str] = {}
    for row in rows:
        # The first row of the present run of states: where the state last became what it is. Every site starts
        # open (the seeded sites have no history row of their creation).
        if previous.get(row.id, RecruitmentState.OPEN) != row.recruitment_state:
            since[row.id] = row.history_date
            who[row.id] = row.history_user.get_username() if row.history_user else ""
        previous[row.id] = row.recruitment_state
    return [
        SiteRecruitment(
            site=site,
            state_label=str(site.get_recruitment_state_display()),
            since=since.get(site.pk),
            reason=site.recruitment_state_reason,
            changed_by=who.get(site.pk, ""),
        )
        for site in sites
    ]


def sites_not_recruiting(sites: QuerySet[Site]) -> list[Site]:
    """Which of `sites` are paused or closed, for the researchers' banner (one query)."""
    return list(sites.exclude(recruitment_state=RecruitmentState.OPEN).order_by("name"))
