"""The allocation's section of the family page (families.sections): what a user may see of it."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from families.models import Family, FamilyStatus
from randomization.models import Allocation, AllocationAnnotation, Unblinding
from randomization.selectors import allocation_of, arm_visible_to, can_randomise
from trial.roles import Role, has_role, is_blinded


def visible_allocation(request: HttpRequest, family: Family) -> Allocation | None:
    """The family's allocation if this user may see its arm; looked up once per request and family."""
    cache = request.__dict__.setdefault("_visible_allocations", {})
    if family.pk not in cache:
        visible = family.status in (FamilyStatus.RANDOMISED, FamilyStatus.WITHDRAWN) and arm_visible_to(
            request.user, family
        )
        # Blinded users (and roles without access to arms) see nothing of the randomisation.
        cache[family.pk] = allocation_of(family) if visible else None
    return cache[family.pk]


class AllocationSection:
    template_name = "randomization/family_section.html"

    def context(self, request: HttpRequest, family: Family) -> dict[str, Any] | None:
        user = request.user
        if family.status == FamilyStatus.CONSENTED and can_randomise(user, family):
            return {"family": family, "can_randomise": True}
        allocation = visible_allocation(request, family)
        if allocation is None:
            return None
        if is_blinded(user):
            # An assessor unblinded for this family: the arm only. Its list position, time and who randomised
            # would narrow down the arms of the families randomised around it (docs/trial-rules.md).
            return {"family": family, "allocation": allocation, "arm_only": True}
        is_pi = has_role(user, Role.PRINCIPAL_INVESTIGATOR)
        return {
            "family": family,
            "allocation": allocation,
            "annotation": getattr(allocation, "annotation", None),
            "can_annotate": can_randomise(user, family) and not hasattr(allocation, "annotation"),
            "can_unblind": is_pi,
            "unblindings": list(family.unblindings.select_related("user", "unblinded_by")) if is_pi else [],
        }

    def timeline_sources(self, request: HttpRequest, family: Family) -> list[tuple[type[models.Model], str]]:
        # An unblinded assessor sees the arm in the section and no randomisation event (times, who, notes).
        if visible_allocation(request, family) is None or is_blinded(request.user):
            return []
        sources: list[tuple[type[models.Model], str]] = [
            (Allocation, "family_id"),
            (AllocationAnnotation, "allocation__family_id"),
        ]
        # Code-breaks (who, for whom, why) are the PI's record; an unblinded assessor learns the arm only.
        if has_role(request.user, Role.PRINCIPAL_INVESTIGATOR):
            sources.append((Unblinding, "family_id"))
        return sources
