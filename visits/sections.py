"""The Family Partner's section of the family page (families.sections), for researchers and the PI.

Blinded users get nothing: not the partner, not the intervention's dates, not the hours, and no timeline
events of this app (docs/trial-rules.md, "What reveals the arm")."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from families.models import Family, FamilyStatus
from randomization.sections import visible_allocation
from randomization.selectors import is_intervention_family
from trial.roles import can_at_site
from visits import weeks
from visits.models import Assignment, InterventionPeriod
from visits.selectors import WORK_ROLES, can_manage_caseload, current_assignment, family_weeks


def _shows_work(request: HttpRequest, family: Family) -> bool:
    """An intervention family, to a user who sees its arm and the site's work (an assessor unblinded for the
    family learns its arm, not its Family Partner). Worked out once per request and family."""
    cache = request.__dict__.setdefault("_shows_family_partner_work", {})
    if family.pk not in cache:
        cache[family.pk] = (
            visible_allocation(request, family) is not None
            and can_at_site(request.user, family.site_id, *WORK_ROLES)
            and is_intervention_family(family)
        )
    return cache[family.pk]


class InterventionSection:
    template_name = "visits/family_section.html"

    def context(self, request: HttpRequest, family: Family) -> dict[str, Any] | None:
        if not _shows_work(request, family):
            return None
        period = InterventionPeriod.objects.select_related("ended_by").filter(family=family).first()
        can_manage = can_manage_caseload(request.user, family.site_id) and family.status == FamilyStatus.RANDOMISED
        running = period is None or period.ended_on is None
        return {
            "family": family,
            "period": period,
            "assignment": current_assignment(family),
            "weeks": family_weeks(family, weeks.today(), count=4, period=period) if period else [],
            "can_assign": can_manage and running,
            "can_end": can_manage and period is not None and running,
        }

    def timeline_sources(self, request: HttpRequest, family: Family) -> list[tuple[type[models.Model], str]]:
        if not _shows_work(request, family):
            return []
        # Contacts have their own page (with their notes' rules); assignments and the period join the timeline.
        return [(Assignment, "family_id"), (InterventionPeriod, "family_id")]
