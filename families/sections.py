"""Sections that later apps add to a family's page (the allocation now, the Family Partner's work later).

Layers run one way (trial ← families ← randomization ← visits), so the family page cannot import the
apps above it. Instead each registers a section at start-up; the page asks every section what to show
to this user about this family, and which of its audited models join the family's timeline.
"""

from typing import Any, Protocol

from django.db import models
from django.http import HttpRequest

from families.models import Family


class FamilySection(Protocol):
    template_name: str

    def context(self, request: HttpRequest, family: Family) -> dict[str, Any] | None:
        """What the section's template needs, or None to show nothing to this user."""

    def timeline_sources(self, request: HttpRequest, family: Family) -> list[tuple[type[models.Model], str]]:
        """Audited models whose history this user may see on the timeline, with the lookup that finds
        the family's rows (for example ("family_id") or ("allocation__family_id"))."""


_sections: list[FamilySection] = []


def register_family_section(section: FamilySection) -> None:
    if not any(type(known) is type(section) for known in _sections):
        _sections.append(section)


def family_sections() -> list[FamilySection]:
    return list(_sections)
