"""Saving research records so that the audit trail (django-simple-history) names who did it and why.

`save_as` and `delete_as` go through the models and simple-history's signals. `create_as` and `update_as`
write the row and its history row in one statement on PostgreSQL, for the randomisation's critical
section, where every statement counts (bench/run.py); the history row is the one simple-history would
write (trial/tests/test_audit.py compares them), and other databases take the `save_as` path.
"""

from functools import cache
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import connection, models
from django.utils import timezone

# The columns simple-history adds to a history table; every other column copies the audited row.
_HISTORY_OWN_FIELDS = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}


def audit_as(instance: models.Model, user: User, reason: str = "") -> None:
    # The audit trail records the acting user (also when a service runs outside a request) and why.
    instance._history_user = user  # type: ignore[attr-defined]  # simple-history's hook; not a field
    if reason:
        instance._change_reason = reason  # type: ignore[attr-defined]  # simple-history's hook; not a field


def save_as(instance: models.Model, user: User, reason: str = "", update_fields: list[str] | None = None) -> None:
    audit_as(instance, user, reason)
    instance.save(update_fields=update_fields)


def delete_as(instance: models.Model, user: User, reason: str) -> None:
    audit_as(instance, user, reason)
    instance.delete()


# Statement templates: names come from the models' metadata (quoted), values are always parameters.
_HISTORY_INSERT = (
    "INSERT INTO {history_table} ({copied}, history_date, history_change_reason, history_type, history_user_id) "
    "SELECT {copied}, %s, %s, %s, %s FROM {rows}"
)
_CREATE = (
    "WITH created AS (INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING *), "
    "logged AS ({history}) SELECT {pk} FROM created"
)
_UPDATE = (
    "WITH changed AS (UPDATE {table} SET {assignments} WHERE {pk} = %s{conditions} RETURNING *), "
    "logged AS ({history}) SELECT {columns} FROM changed"
)


@cache
def _history_insert(model: type[models.Model], rows: str) -> str:
    """INSERT … SELECT of the history rows of `rows` (a CTE returning the audited table's columns);
    its four parameters are the history's date, change reason, type (+ or ~) and user."""
    history_model = model.history.model  # type: ignore[attr-defined]  # simple-history's manager
    quote = connection.ops.quote_name
    copied = ", ".join(
        quote(f.column) for f in history_model._meta.concrete_fields if f.name not in _HISTORY_OWN_FIELDS
    )
    return _HISTORY_INSERT.format(history_table=quote(history_model._meta.db_table), copied=copied, rows=rows)


def create_as(instance: models.Model, user: User, reason: str = "") -> None:
    """Insert a new record and its history row ("+") in one statement (PostgreSQL)."""
    if connection.vendor != "postgresql":
        save_as(instance, user, reason)
        return
    model = type(instance)
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    sql = _CREATE.format(
        table=quote(model._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        values=", ".join(["%s"] * len(fields)),
        history=_history_insert(model, "created"),
        pk=quote(model._meta.pk.column),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, timezone.now(), reason or None, "+", user.pk])
        (instance.pk,) = cursor.fetchone()
    instance._state.adding = False
    instance._state.db = connection.alias


_M = TypeVar("_M", bound=models.Model)


def update_as(
    model: type[_M],
    pk: int,
    *,
    changes: dict[str, Any],
    where: dict[str, Any] | None = None,
    user: User,
    reason: str = "",
) -> _M | None:
    """Set `changes` on the record `pk` if it still matches `where`, with its history row ("~"); returns the
    record as changed, or None when no record matched (nothing is written then).

    On PostgreSQL this is one statement, a conditional UPDATE that also takes the row's lock: a claim whose
    row count says who got there first (two requests at once: the second waits for the first one's commit,
    then finds that the record no longer matches)."""
    where = where or {}
    if connection.vendor != "postgresql":
        instance = model._default_manager.select_for_update().filter(pk=pk, **where).first()
        if instance is not None:
            for name, value in changes.items():
                setattr(instance, name, value)
            save_as(instance, user, reason, update_fields=list(changes))
        return instance
    quote = connection.ops.quote_name
    fields = {f.name: f for f in model._meta.concrete_fields}
    unknown = (set(changes) | set(where)) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    sql = _UPDATE.format(
        table=quote(model._meta.db_table),
        assignments=", ".join(f"{quote(fields[name].column)} = %s" for name in changes),
        conditions="".join(f" AND {quote(fields[name].column)} = %s" for name in where),
        pk=quote(model._meta.pk.column),
        history=_history_insert(model, "changed"),
        columns=", ".join(quote(f.column) for f in model._meta.concrete_fields),
    )
    params = [
        *(fields[name].get_db_prep_save(value, connection) for name, value in changes.items()),
        pk,
        *(fields[name].get_db_prep_save(value, connection) for name, value in where.items()),
        timezone.now(),
        reason or None,
        "~",
        user.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    converted = []
    for f, value in zip(model._meta.concrete_fields, row, strict=True):
        from_db = getattr(f, "from_db_value", None)
        converted.append(from_db(value, None, connection) if from_db else value)
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], converted)
