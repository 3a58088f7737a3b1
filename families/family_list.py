"""The family list is the researchers' record status dashboard: counts by status, sorting, a next step for each
family, and what the apps above families add to it (the arm's column and filter, "Randomise", "Assign a Family
Partner").

Layers run one way (trial ← families ← randomization ← visits), so the list cannot import the apps above it. Each
registers a part in its `AppConfig.ready()`, as the family page's sections do (families/sections.py). For one
request, a part says which filters it offers this user, which columns it shows them and the next step it knows
for each family of the page; a part offers nothing to a user who may not see it (a blinded user never gets the
arm's column or filter, so an arm cannot leak through the counts or the order either). Each part reads the page's
families in a fixed number of queries, however many there are.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from families.models import Family, FamilyStatus
from families.selectors import ACT_ROLES
from trial.roles import can_at_site, has_role


@dataclass(frozen=True)
class ListFilter:
    """A choice that narrows the list: its GET parameter, label, choices and how it narrows the families."""

    name: str
    label: str | Promise
    choices: Sequence[tuple[str, str | Promise]]
    apply: Callable[[QuerySet[Family], str], QuerySet[Family]]


@dataclass(frozen=True)
class ListColumn:
    """A column: its key (the cells' `data-<key>` attribute), heading, and text per family's primary key."""

    key: str
    heading: str | Promise
    cells: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NextAction:
    """What a researcher does next for a family, and where."""

    label: str
    url: str


class FamilyListPart:
    """What an app adds to the family list; each method offers nothing unless overridden."""

    def filters(self, request: HttpRequest) -> list[ListFilter]:
        return []

    def columns(self, request: HttpRequest, families: Sequence[Family]) -> list[ListColumn]:
        return []

    def next_actions(self, request: HttpRequest, families: Sequence[Family]) -> dict[int, NextAction]:
        return {}


_parts: list[FamilyListPart] = []


def register_family_list_part(part: FamilyListPart) -> None:
    if not any(type(known) is type(part) for known in _parts):
        _parts.append(part)


def family_list_parts() -> list[FamilyListPart]:
    return list(_parts)


@dataclass(frozen=True)
class FamilyRow:
    family: Family
    cells: list[tuple[ListColumn, str]]  # the added columns' texts, in the columns' order
    action: NextAction | None


@dataclass(frozen=True)
class FamilyTable:
    columns: list[ListColumn]
    rows: list[FamilyRow]
    shows_actions: bool  # only researchers act on families, so only they get the next-step column


def family_table(request: HttpRequest, families: Sequence[Family]) -> FamilyTable:
    """The page's families with the columns and next steps the registered parts add for this user."""
    columns = [column for part in _parts for column in part.columns(request, families)]
    shows_actions = has_role(request.user, *ACT_ROLES)
    actions = next_actions(request, families) if shows_actions else {}
    rows = [
        FamilyRow(family, [(column, column.cells.get(family.pk, "—")) for column in columns], actions.get(family.pk))
        for family in families
    ]
    return FamilyTable(columns, rows, shows_actions)


@dataclass(frozen=True)
class SortHeading:
    """A sortable column's heading: the `sort` its link asks for, and its aria-sort now ("" when not sorted by)."""

    value: str
    aria_sort: str


def sort_headings(sort: str, keys: Sequence[str]) -> dict[str, SortHeading]:
    """Each heading's link sorts by its column, or reverses the order when the list is sorted by it already."""
    return {
        key: SortHeading(
            value=f"-{key}" if sort == key else key,
            aria_sort="ascending" if sort == key else "descending" if sort == f"-{key}" else "",
        )
        for key in keys
    }


def next_actions(request: HttpRequest, families: Sequence[Family]) -> dict[int, NextAction]:
    """The next step for each family the user acts on: enrolment's own (screen, record consent), then whatever
    the apps above add for the families that have none from here (randomise, assign a Family Partner)."""
    actions: dict[int, NextAction] = {}
    for family in families:
        if not can_at_site(request.user, family.site_id, *ACT_ROLES):
            continue
        if family.status == FamilyStatus.REFERRED:
            actions[family.pk] = NextAction(_("Screen"), reverse("families:screen", args=[family.study_id]))
        elif family.status == FamilyStatus.ELIGIBLE:
            actions[family.pk] = NextAction(
                _("Record consent or decline"), reverse("families:consent", args=[family.study_id])
            )
    for part in _parts:
        for pk, action in part.next_actions(request, families).items():
            actions.setdefault(pk, action)
    return actions
