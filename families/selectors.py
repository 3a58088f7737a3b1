"""Reads of families that several views share: who may see which family, and a family's timeline."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, Count, F, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest, TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from families.models import (
    Child,
    Consent,
    Criterion,
    Family,
    FamilyIdentity,
    FamilyStatus,
    Parent,
    Screening,
    StruggleArea,
    Withdrawal,
)
from trial.models import Site
from trial.roles import Role, User, can_at_site, display_name, is_blinded, site_ids_for

# Roles that see a site's families (read-only unless also a researcher). Family Partners will see
# their assigned families once assignment exists (the caseload issue); until then, none.
VIEW_ROLES = (Role.RESEARCHER, Role.OUTCOME_ASSESSOR, Role.PRINCIPAL_INVESTIGATOR)
ACT_ROLES = (Role.RESEARCHER,)
IDENTIFIER_ROLES = (Role.RESEARCHER,)


def families_visible_to(user: User) -> QuerySet[Family]:
    site_ids = site_ids_for(user, *VIEW_ROLES)
    families = Family.objects.select_related("site")
    if site_ids is None:
        return families
    return families.filter(site_id__in=site_ids)


def get_family_for_user(user: User, study_id: str, *, act: bool = False) -> Family:
    """The one access check for a family: 404 to anyone who may not see it (so its existence does not
    leak to other sites), 403 to someone who may see it but not act on it."""
    family = Family.objects.select_related("site").filter(study_id=study_id).first()
    if family is None:
        raise Http404
    if can_at_site(user, family.site_id, *ACT_ROLES):
        return family
    if not can_at_site(user, family.site_id, *VIEW_ROLES):
        raise Http404
    if act:
        raise PermissionDenied
    return family


def randomised_at(family: Family) -> datetime | None:
    """When the family was randomised: its first change to "randomised", read from its own history, so that
    families needs nothing from the randomisation app to know it."""
    return (
        Family.history.filter(id=family.pk, status=FamilyStatus.RANDOMISED)
        .order_by("history_date")
        .values_list("history_date", flat=True)
        .first()
    )


def blinded_from(viewer: User, family: Family) -> datetime | None:
    """From when `viewer` is blinded to what is written about `family`: its randomisation, for a blinded viewer;
    None for a viewer who may read everything, or a family never randomised.

    From then on a blinded viewer reads no free text (people write things like "did not want the visits any
    more"), no time of day and not who randomised (docs/trial-rules.md, "What reveals the arm")."""
    if not is_blinded(viewer):
        return None
    return randomised_at(family)


def written_after(moment: datetime | None, written: datetime) -> bool:
    """Whether a text written at `written` falls in a blinded viewer's hidden time (see `blinded_from`)."""
    return moment is not None and written >= moment


def hidden() -> str:
    """What a viewer reads instead of a value they may not see."""
    return _("(hidden)")


# The family list's orders (a leading "-" reverses one); the study ID breaks ties.
FAMILY_SORTS = ("study_id", "referral_date", "status", "last_change")


def families_for_list(families: QuerySet[Family], *, sort: str, blinded: bool) -> QuerySet[Family]:
    """The family list's families with the moment of their last change (`last_change`), in the order `sort` names.

    For a blinded viewer the last change is only a date, and so is its order: the order of changes made on one
    day would give the order, and so roughly the times, of that day's randomisations (docs/trial-rules.md)."""
    last = Family.history.filter(id=OuterRef("pk")).order_by("-history_date").values("history_date")[:1]
    families = families.annotate(last_change=Subquery(last))
    if blinded:
        families = families.annotate(last_change_day=TruncDate("last_change", tzinfo=timezone.get_current_timezone()))
    descending, key = sort.startswith("-"), sort.removeprefix("-")
    ordering: Any
    if key == "referral_date":
        ordering = F("referral_date")
    elif key == "status":
        ordering = Case(*(When(status=status, then=Value(i)) for i, status in enumerate(FamilyStatus.values)))
    elif key == "last_change":
        ordering = F("last_change_day" if blinded else "last_change")
    else:
        return families.order_by(*(("-site__code", "-number") if descending else ("site__code", "number")))
    return families.order_by(ordering.desc() if descending else ordering.asc(), "site__code", "number")


def with_last_modified(families: QuerySet[Family]) -> QuerySet[Family]:
    """`families` annotated with `modified_at`: the latest change of the family, its screening, its answer to the
    invitation, its randomisation or its withdrawal, in the same one query.

    Each of those steps saves the family itself (its status; a re-screening too, even to the same status), so the
    family's own history has a row for it, except one: a decline after a decline leaves the status as it was, so
    the latest decision's own time counts too. (Household and identifier corrections change neither.)"""
    last_change = Family.history.filter(id=OuterRef("pk")).order_by("-history_date").values("history_date")[:1]
    last_decision = Consent.objects.filter(family=OuterRef("pk")).order_by("-recorded_at").values("recorded_at")[:1]
    return families.annotate(
        modified_at=Greatest(
            Coalesce(Subquery(last_change), F("registered_at")), Coalesce(Subquery(last_decision), F("registered_at"))
        )
    )


def status_counts(families: QuerySet[Family]) -> dict[str, int]:
    """How many of `families` are in each status (every status, 0 for none), in one query."""
    counted = dict(families.order_by().values_list("status").annotate(count=Count("pk")))
    return {status: counted.get(status, 0) for status in FamilyStatus.values}


@dataclass
class Change:
    label: str
    old: str
    new: str


@dataclass
class TimelineEvent:
    when: datetime
    who: str
    what: str
    changes: list[Change] = field(default_factory=list)
    reason: str = ""
    date_only: bool = False  # the time of day is left out (a blinded viewer, from the randomisation's day on)


# The audited models of a family, how their history finds the family, and what each event is called.
_TIMELINE_SOURCES = [
    (Family, "id"),
    (Parent, "family_id"),
    (Child, "family_id"),
    (FamilyIdentity, "family_id"),
    (Screening, "family_id"),
    (Consent, "family_id"),
    (Withdrawal, "family_id"),
]
_NOT_SHOWN = {
    "id",
    "family",
    "number",
    "study_id",
    "registered_at",
    "recorded_at",
    "thresholds",
    "entry",
    "allocation",
    "replaces",  # a new consent decision shows its reason; which one it follows is the timeline's order
}
_CHOICE_LISTS = {"struggle_areas": StruggleArea, "failed_criteria": Criterion}


def _event_title(model: type[models.Model], history_type: str) -> str:
    name = str(model._meta.verbose_name)
    name = name[:1].upper() + name[1:]  # not str.capitalize(), which would lower "Family Partner"
    if history_type == "+":
        return _("%(record)s added") % {"record": name}
    if history_type == "-":
        return _("%(record)s removed") % {"record": name}
    return _("%(record)s changed") % {"record": name}


def family_timeline(
    family: Family, extra_sources: Sequence[tuple[type[models.Model], str]] = (), *, viewer: User
) -> list[TimelineEvent]:
    """Every audited change of the family and its records, newest first: who, when, what, old → new.

    `extra_sources` are the audited models of the page's sections (families.sections) that the viewer
    may see. One query per audited model plus one per kind of record named (users, ...), however long the
    history, and one for a blinded viewer.
    Direct identifiers are named as changed, never shown. For a blinded viewer (`blinded_from`), every text
    field's value and every reason of a change made at or after the randomisation is hidden, whichever app
    the record belongs to; events from the randomisation's day on give their date only, and the
    randomisation does not say who made it.
    """
    blind_from = blinded_from(viewer, family)
    blind_day = timezone.localtime(blind_from).date() if blind_from is not None else None
    histories = []
    related_ids: dict[Any, set[int]] = defaultdict(set)
    sources: list[tuple[type[models.Model], str]] = [*_TIMELINE_SOURCES, *extra_sources]
    for model, key in sources:
        # simple-history adds the `history` manager when the model class is made; the stubs cannot see it.
        history = model.history  # type: ignore[attr-defined]
        rows = list(
            history.filter(**{key: family.pk})
            .select_related("history_user")
            .order_by("id", "history_date", "history_id")
        )
        audited = {f.name for f in history.model._meta.concrete_fields}
        fields = [f for f in model._meta.concrete_fields if f.name in audited and f.name not in _NOT_SHOWN]
        for row in rows:
            for f in fields:
                if f.is_relation and f.related_model not in (Family, Site):
                    value = getattr(row, f.attname)
                    if value is not None:
                        related_ids[f.related_model].add(value)
        histories.append((model, fields, rows))
    # The users (and other records, such as a Family Partner) the history names, by model and primary key:
    # one query per kind of record.
    related: dict[Any, Mapping[Any, models.Model]] = {
        related_model: related_model._default_manager.in_bulk(ids) for related_model, ids in related_ids.items()
    }
    related[Site] = {family.site_id: family.site}

    events = []
    for model, fields, rows in histories:
        previous: dict[int, models.Model] = {}
        for row in rows:
            before = previous.get(row.id)
            previous[row.id] = row
            text_hidden = written_after(blind_from, row.history_date)
            date_only = blind_day is not None and timezone.localtime(row.history_date).date() >= blind_day
            changes = []
            for f in fields:
                new = getattr(row, f.attname)
                old = getattr(before, f.attname) if before is not None else None
                if before is not None and old == new:
                    continue
                if before is None and new in (None, "", [], {}):
                    continue
                if model is FamilyIdentity:
                    changes.append(Change(str(f.verbose_name), "", hidden()))
                elif text_hidden and isinstance(f, models.TextField):
                    changes.append(Change(str(f.verbose_name), hidden() if old else "", hidden() if new else "—"))
                else:
                    changes.append(
                        Change(
                            str(f.verbose_name),
                            _display(f, old, related, date_only=date_only) if before is not None else "",
                            _display(f, new, related, date_only=date_only),
                        )
                    )
            if row.history_type == "~" and not changes:
                continue
            reason = row.history_change_reason or ""
            if text_hidden and reason:
                reason = hidden()
            who = display_name(row.history_user) if row.history_user else _("the system")
            if blind_from is not None and _randomises(model, row, before):
                who = "—"
            events.append(
                TimelineEvent(
                    when=row.history_date,
                    who=who,
                    what=_event_title(model, row.history_type),
                    changes=changes,
                    reason=reason,
                    date_only=date_only,
                )
            )
    events.sort(key=lambda event: event.when, reverse=True)
    return events


def _randomises(model: type[models.Model], row: Any, before: Any) -> bool:
    """Whether this history row is the family's randomisation (its status becoming "randomised")."""
    return (
        model is Family
        and row.status == FamilyStatus.RANDOMISED
        and (before is None or before.status != FamilyStatus.RANDOMISED)
    )


def _display(
    f: models.Field, value: Any, related: Mapping[Any, Mapping[Any, models.Model]], *, date_only: bool = False
) -> str:
    if value is None or value == "":
        return "—"
    if f.is_relation:
        target = related.get(f.related_model, {}).get(value)
        if target is None:
            return "—"
        return display_name(cast(AbstractUser, target)) if f.related_model is get_user_model() else str(target)
    if f.choices:
        return str(dict(f.flatchoices).get(value, value))
    if f.name in _CHOICE_LISTS and isinstance(value, list):
        labels = dict(_CHOICE_LISTS[f.name].choices)
        return ", ".join(str(labels.get(code, code)) for code in value) or "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "SHORT_DATE_FORMAT" if date_only else "SHORT_DATETIME_FORMAT")
    if isinstance(value, date):
        return date_format(value, "SHORT_DATE_FORMAT")
    return str(value)
