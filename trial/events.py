"""Recording what a monitor must be able to see afterwards although no research record changed (trial.AuditEvent):
views and downloads of an unsealed list, refused randomisations, and the like. Changes of records are in their
history tables (simple-history), not here."""

from typing import Any

from django.contrib.auth.models import User

from trial.models import AuditEvent, Site


def record_event(
    *, kind: str, user: User | None, site: Site | None = None, subject: str = "", **details: Any
) -> AuditEvent:
    """Write one audit event now, in the caller's transaction if there is one. `details` are codes and study IDs,
    never a name nor any other direct identifier."""
    return AuditEvent.objects.create(kind=kind, user=user, site=site, subject=subject, details=details)
