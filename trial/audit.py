"""Saving research records so that the audit trail (django-simple-history) names who did it and why.

Both go through the models and simple-history's signals, on every database.
"""

from django.contrib.auth.models import User
from django.db import models


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
