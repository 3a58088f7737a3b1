"""The audit log: every change (the rows of every simple-history table of the project's apps) and every audit event
(trial.AuditEvent: views of unsealed lists, refused randomisations, downloads and exports), newest first.

Sources are found through simple-history's registry, so that a model given `history = HistoricalRecords()` later
joins the log by itself; how a source's rows reach a family (its study ID) and a site is found by following its
foreign keys. A row says when, who, what, the family, the site, the reason and WHICH fields changed (their labels,
from the previous history row of the same record): never a value, since values may be encrypted identifiers or
free text.

Pages are keyset-paginated: per source one query ordered by date with a LIMIT of one page (plus one query for the
previous rows of the changes on the page), merged in Python. The number of queries depends on the number of
sources, never on the size of the tables, and a deep page costs what the first one does.
"""

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.models import registered_models

from families.models import Family, FamilyStatus
from trial.models import AuditEvent, EventKind, Site
from trial.roles import Role, User, has_role, is_blinded

PAGE_SIZE = 50


def _project_app_labels() -> frozenset[str]:
    """The project's own apps (those in this repository, not installed packages): their history is the trial's."""
    root = Path(settings.BASE_DIR).resolve()
    return frozenset(
        config.label
        for config in django_apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(root) and "site-packages" not in Path(config.path).parts
    )


# What reveals a family's arm to a blinded viewer (docs/architecture.md, "Access"): the Family Partner's work (only
# intervention families have it), every randomisation record except the lists' metadata, and the assessors' guesses.
ARM_REVEALING_APPS = frozenset({"visits"})
RANDOMISATION_METADATA = frozenset(
    {"randomization.listsegment", "randomization.unsealing", "randomization.listsuspension"}
)
ARM_REVEALING_MODELS = frozenset({"followups.blindingguess"})
# Unsealed lists show every family's arm.
ARM_REVEALING_EVENTS = frozenset({EventKind.UNSEALED_LIST_VIEWED, EventKind.UNSEALED_LIST_DOWNLOADED})

EVENT_PREFIX = "event:"


def may_read_audit_log(user: User) -> bool:
    """The PI, data managers and administrators (and superusers) read the audit log."""
    return bool(
        has_role(user, Role.PRINCIPAL_INVESTIGATOR, Role.DATA_MANAGER, Role.ADMINISTRATOR)
        or (user.is_authenticated and user.is_active and user.is_superuser)
    )


@dataclass(frozen=True)
class Source:
    """One simple-history table of the project."""

    key: str  # the model's label, lower case: "families.family"
    index: int  # the source's place in the order of rows with the same time
    model: type[models.Model]
    history: type[models.Model]
    study_id_path: str | None  # a lookup from a history row to the family's study ID
    site_path: str | None  # a lookup from a history row to the site's primary key
    fields: tuple[models.Field, ...]  # the fields a change is diffed on
    reveals_arm: bool

    @property
    def label(self) -> str:
        name = str(self.model._meta.verbose_name)
        return name[:1].upper() + name[1:]


def _links(model: type[models.Model]) -> list[models.ForeignKey]:
    """The model's foreign keys to other records (not to people: a user is who acted, not what it is about)."""
    user_model = get_user_model()
    return [
        f for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey) and f.related_model is not user_model
    ]


def _path(model: type[models.Model], target: type[models.Model], *, own: str, depth: int = 2) -> str | None:
    """A lookup from `model` to `target`'s `own` field, through at most `depth` foreign keys (shortest first)."""
    if model is target:
        return own
    level: list[tuple[str, Any]] = [("", model)]
    for _step in range(depth):
        following: list[tuple[str, Any]] = []
        for prefix, current in level:
            for link in _links(current):
                if link.related_model is target:
                    return f"{prefix}{link.name}__{own}" if own != "id" else f"{prefix}{link.name}"
                following.append((f"{prefix}{link.name}__", link.related_model))
        level = following
    return None


def _reveals_arm(key: str) -> bool:
    app = key.split(".")[0]
    return (
        app in ARM_REVEALING_APPS
        or (app == "randomization" and key not in RANDOMISATION_METADATA)
        or key in ARM_REVEALING_MODELS
    )


@cache
def history_sources() -> tuple[Source, ...]:
    """Every simple-history table of the project's apps, in a fixed order."""
    project_apps = _project_app_labels()
    models_by_key = {
        model._meta.label_lower: model
        for model in registered_models.values()
        if model._meta.app_label in project_apps and hasattr(model, "history")
    }
    sources = []
    for index, key in enumerate(sorted(models_by_key)):
        model = models_by_key[key]
        history_model = model.history.model
        audited = {f.name for f in history_model._meta.concrete_fields}
        study_id_path = _path(model, Family, own="study_id")
        site_path = _path(model, Site, own="id")
        if site_path is None and study_id_path is not None and study_id_path != "study_id":
            site_path = study_id_path.removesuffix("study_id") + "site"
        sources.append(
            Source(
                key=key,
                index=index,
                model=model,
                history=history_model,
                study_id_path=study_id_path,
                site_path=site_path,
                fields=tuple(f for f in model._meta.concrete_fields if f.name in audited and f.name != "id"),
                reveals_arm=_reveals_arm(key),
            )
        )
    return tuple(sources)


def _events_index() -> int:
    return len(history_sources())


def kind_choices() -> list[tuple[str, str]]:
    """Every kind of row: each audited model, then each kind of event."""
    return [(source.key, source.label) for source in sorted(history_sources(), key=lambda s: s.label)] + [
        (f"{EVENT_PREFIX}{value}", str(label)) for value, label in EventKind.choices
    ]


@dataclass(frozen=True)
class AuditFilters:
    username: str = ""
    study_id: str = ""
    site: Site | None = None
    kind: str = ""
    # A day (from its start, to its end) or a moment (from it, up to and including it).
    date_from: date | datetime | None = None
    date_to: date | datetime | None = None

    def as_details(self) -> dict[str, str]:
        """The filters as codes, for the export's own audit event."""
        chosen = {
            "user": self.username,
            "family": self.study_id,
            "site": self.site.code if self.site else "",
            "kind": self.kind,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in chosen.items() if value}


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last row's time, source and primary key (rows are ordered by all three, newest first)."""

    at: datetime
    source: int
    pk: int

    def __str__(self) -> str:
        return f"{self.at.isoformat()}~{self.source}~{self.pk}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """Raises ValueError for anything that is not a cursor this page wrote."""
        at, source, pk = text.split("~")
        moment = datetime.fromisoformat(at)
        if timezone.is_naive(moment):
            raise ValueError("naive time")
        number, key = int(source), int(pk)
        if not (0 <= number <= _events_index()) or key < 0:
            raise ValueError("out of range")
        return cls(moment, number, key)

    def after(self, *, date_field: str, pk_field: str, index: int) -> Q:
        """The rows of source `index` that come after this cursor, newest first."""
        if index < self.source:
            return Q(**{f"{date_field}__lte": self.at})
        if index > self.source:
            return Q(**{f"{date_field}__lt": self.at})
        return Q(**{f"{date_field}__lt": self.at}) | Q(**{date_field: self.at, f"{pk_field}__lt": self.pk})


@dataclass
class AuditRow:
    when: datetime
    who: str
    what: str
    kind: str
    study_id: str
    site: str
    reason: str
    fields: list[str] = field(default_factory=list)
    date_only: bool = False  # a blinded viewer sees the day of a family's records, not the time
    source: int = 0
    pk: int = 0

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.when, self.source, self.pk)


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_cursor: Cursor | None  # None: the last page


def time_bounds(filters: AuditFilters) -> tuple[datetime | None, datetime | None]:
    """The filters' days as times in the trial's time zone, from the start of the first to the end of the last (the
    end exclusive); a moment is taken as it is, the end up to and including it."""
    zone = timezone.get_default_timezone()
    start: datetime | None = None
    end: datetime | None = None
    if isinstance(filters.date_from, datetime):
        start = filters.date_from
    elif filters.date_from is not None:
        start = timezone.make_aware(datetime.combine(filters.date_from, time.min), zone)
    if isinstance(filters.date_to, datetime):
        end = filters.date_to + timedelta(microseconds=1)
    elif filters.date_to is not None:
        end = timezone.make_aware(datetime.combine(filters.date_to + timedelta(days=1), time.min), zone)
    return start, end


def _history_rows(source: Source, filters: AuditFilters, cursor: Cursor | None) -> models.QuerySet | None:
    """The source's history rows after `cursor` that the filters keep, newest first; None when the filters rule the
    whole source out (no query)."""
    if filters.kind and filters.kind != source.key:
        return None
    if filters.study_id and source.study_id_path is None:
        return None
    if filters.site is not None and source.site_path is None:
        return None
    rows = source.history._default_manager.all()
    if filters.username:
        rows = rows.filter(history_user__username=filters.username)
    if filters.study_id and source.study_id_path:
        rows = rows.filter(**{source.study_id_path: filters.study_id})
    if filters.site is not None and source.site_path:
        rows = rows.filter(**{source.site_path: filters.site.pk})
    start, end = time_bounds(filters)
    if start is not None:
        rows = rows.filter(history_date__gte=start)
    if end is not None:
        rows = rows.filter(history_date__lt=end)
    if cursor is not None:
        rows = rows.filter(cursor.after(date_field="history_date", pk_field="history_id", index=source.index))
    previous = (
        source.history._default_manager.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    annotations: dict[str, Any] = {"audit_username": F("history_user__username"), "audit_previous": Subquery(previous)}
    annotations["audit_study_id"] = F(source.study_id_path) if source.study_id_path else models.Value("")
    if source.site_path is not None:
        annotations["audit_site"] = F(f"{source.site_path}__code" if source.site_path != "id" else "code")
    return rows.annotate(**annotations).order_by("-history_date", "-history_id")


def _event_rows(filters: AuditFilters, cursor: Cursor | None, *, blinded: bool) -> models.QuerySet[AuditEvent] | None:
    if filters.kind and not filters.kind.startswith(EVENT_PREFIX):
        return None
    events = AuditEvent.objects.all()
    if filters.kind:
        events = events.filter(kind=filters.kind.removeprefix(EVENT_PREFIX))
    if blinded:
        events = events.exclude(kind__in=ARM_REVEALING_EVENTS)
    if filters.username:
        events = events.filter(user__username=filters.username)
    if filters.study_id:
        events = events.filter(subject=filters.study_id)
    if filters.site is not None:
        events = events.filter(site=filters.site)
    start, end = time_bounds(filters)
    if start is not None:
        events = events.filter(at__gte=start)
    if end is not None:
        events = events.filter(at__lt=end)
    if cursor is not None:
        events = events.filter(cursor.after(date_field="at", pk_field="pk", index=_events_index()))
    return events.annotate(audit_username=F("user__username"), audit_site=F("site__code")).order_by("-at", "-pk")


def _what(source: Source, history_type: str) -> str:
    if history_type == "+":
        return _("%(record)s created") % {"record": source.label}
    if history_type == "-":
        return _("%(record)s deleted") % {"record": source.label}
    return _("%(record)s changed") % {"record": source.label}


def _event_what(event: AuditEvent) -> str:
    """An event's kind in words; an API call names its operation, method, answer and token (the token's name is
    the user's own label for a script, not research data)."""
    if event.kind != EventKind.API_CALL:
        return event.get_kind_display()
    details = event.details if isinstance(event.details, dict) else {}
    values = {
        "operation": details.get("operation", ""),
        "method": details.get("method", ""),
        "status": details.get("status", ""),
        "token": details.get("token", ""),
    }
    if not values["token"]:
        return _("API call: %(operation)s (%(method)s, %(status)s)") % values
    return _("API call: %(operation)s (%(method)s, %(status)s) with token '%(token)s'") % values


def _looks_like_study_id(subject: str) -> bool:
    code, _dash, number = subject.partition("-")
    return len(code) == 3 and code.isalpha() and code.isupper() and number.isdigit()


Keyed = tuple[tuple[datetime, int, int], Source | None, Any]


def _sources_for(viewer: User) -> list[Source]:
    blinded = is_blinded(viewer)
    return [source for source in history_sources() if not (blinded and source.reveals_arm)]


def audit_page(
    *, viewer: User, filters: AuditFilters, cursor: Cursor | None = None, size: int = PAGE_SIZE
) -> AuditPage:
    """One page of the audit log for `viewer` (who may read it: may_read_audit_log), newest first: per table the
    page's worth of newest rows after `cursor`, merged."""
    blinded = is_blinded(viewer)
    limit = size + 1
    keyed: list[Keyed] = []
    for source in _sources_for(viewer):
        rows = _history_rows(source, filters, cursor)
        if rows is not None:
            keyed += [((row.history_date, source.index, row.history_id), source, row) for row in rows[:limit]]
    events = _event_rows(filters, cursor, blinded=blinded)
    if events is not None:
        keyed += [((event.at, _events_index(), event.pk), None, event) for event in events[:limit]]
    keyed.sort(key=lambda item: item[0], reverse=True)
    result = _audit_rows_of(keyed[:size], blinded=blinded)
    more = len(keyed) > size
    return AuditPage(rows=result, next_cursor=result[-1].cursor if more and result else None)


def _keyed_history(source: Source, rows: models.QuerySet, chunk: int) -> Iterator[Keyed]:
    for row in rows.iterator(chunk_size=chunk):
        yield (row.history_date, source.index, row.history_id), source, row


def _keyed_events(events: models.QuerySet[AuditEvent], chunk: int) -> Iterator[Keyed]:
    index = _events_index()
    for event in events.iterator(chunk_size=chunk):
        yield (event.at, index, event.pk), None, event


def audit_rows(*, viewer: User, filters: AuditFilters, chunk: int = 500) -> Iterator[AuditRow]:
    """Every row the filters keep, newest first, for the CSV export: each table read once through a server-side
    cursor, merged as they stream, and made into rows `chunk` at a time, so memory stays flat however long the log."""
    blinded = is_blinded(viewer)
    streams: list[Iterator[Keyed]] = []
    for source in _sources_for(viewer):
        rows = _history_rows(source, filters, None)
        if rows is not None:
            streams.append(_keyed_history(source, rows, chunk))
    events = _event_rows(filters, None, blinded=blinded)
    if events is not None:
        streams.append(_keyed_events(events, chunk))
    merged = heapq.merge(*streams, key=lambda item: item[0], reverse=True)
    while batch := list(islice(merged, chunk)):
        yield from _audit_rows_of(batch, blinded=blinded)


def _audit_rows_of(keyed: list[Keyed], *, blinded: bool) -> list[AuditRow]:
    """The rows for these history rows and events: one query per table for the previous rows of the changes."""
    shown_ids: dict[str, list[int]] = {}
    for _key, shown_source, row in keyed:
        if shown_source is not None and row.history_type == "~" and row.audit_previous is not None:
            shown_ids.setdefault(shown_source.key, []).append(row.audit_previous)
    sources = {known.key: known for known in history_sources()}
    previous: dict[str, dict[int, Any]] = {
        key: source_rows
        for key, ids in shown_ids.items()
        if (source_rows := sources[key].history._default_manager.in_bulk(ids, field_name="history_id"))
    }

    # Labels once per call, not per row (a stream makes hundreds of thousands of rows).
    field_labels: dict[str, list[tuple[str, str]]] = {}
    whats: dict[tuple[str, str], str] = {}
    result = []
    for (when, index, pk), row_source, row in keyed:
        if row_source is None:
            result.append(
                AuditRow(
                    when=when,
                    who=row.audit_username or "",
                    what=_event_what(row),
                    kind=f"{EVENT_PREFIX}{row.kind}",
                    study_id=row.subject if _looks_like_study_id(row.subject) else "",
                    site=row.audit_site or "",
                    reason="",
                    date_only=blinded and _looks_like_study_id(row.subject),
                    source=index,
                    pk=pk,
                )
            )
            continue
        before = previous.get(row_source.key, {}).get(row.audit_previous) if row.history_type == "~" else None
        if row_source.key not in field_labels:
            field_labels[row_source.key] = [(f.attname, str(f.verbose_name)) for f in row_source.fields]
        changed = (
            [label for name, label in field_labels[row_source.key] if getattr(before, name) != getattr(row, name)]
            if before is not None
            else []
        )
        what_key = (row_source.key, row.history_type)
        if what_key not in whats:
            whats[what_key] = _what(row_source, row.history_type)
        about_family = bool(row.audit_study_id)
        reason = row.history_change_reason or ""
        who = row.audit_username or ""
        if blinded and about_family:
            # As on the family page for a blinded viewer: a reason may speak of the intervention, and the time and
            # the person of a randomisation could point to the list; the day and the fields stay.
            reason = ""
            if (
                row_source.model is Family
                and row.status == FamilyStatus.RANDOMISED
                and (before is None or before.status != FamilyStatus.RANDOMISED)
            ):
                who = ""
        result.append(
            AuditRow(
                when=when,
                who=who,
                what=whats[what_key],
                kind=row_source.key,
                study_id=row.audit_study_id or "",
                site=getattr(row, "audit_site", None) or "",
                reason=reason,
                fields=changed,
                date_only=blinded and about_family,
                source=index,
                pk=pk,
            )
        )
    return result


__all__ = [
    "PAGE_SIZE",
    "AuditFilters",
    "AuditPage",
    "AuditRow",
    "Cursor",
    "audit_page",
    "audit_rows",
    "history_sources",
    "kind_choices",
    "may_read_audit_log",
    "time_bounds",
]
