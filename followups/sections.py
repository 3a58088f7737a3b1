"""The follow-up section of the family page (families.sections): the schedule and each assessment's state, for the
users who read follow-ups at the family's site (assessors, researchers, the PI). The schedule is the same in both
arms, so it reveals nothing; the assessor's guess of the arm is in no section and no timeline.

Its cost on the family page: the schedule (one query), whether the family is lost to follow-up (one, for a
randomised family), and the assessments' history on the timeline (one; one more once the family is lost)."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from families.models import Family, FamilyStatus
from followups.models import Assessment, LostToFollowUp
from followups.selectors import bookable, can_read, can_record, family_schedule
from trial.dates import today

# The section's queries on the family page (see the module's docstring), for the page's query budgets.
SECTION_QUERIES = 3


def _lost(request: HttpRequest, family: Family) -> LostToFollowUp | None:
    """The family's loss to follow-up, looked up once per request (the section and the timeline both ask)."""
    cache = request.__dict__.setdefault("_lost_to_follow_up", {})
    if family.pk not in cache:
        lost = None
        if family.status in (FamilyStatus.RANDOMISED, FamilyStatus.WITHDRAWN):
            lost = LostToFollowUp.objects.filter(family=family).first()
        cache[family.pk] = lost
    return cache[family.pk]


class FollowUpSection:
    template_name = "followups/family_section.html"

    def context(self, request: HttpRequest, family: Family) -> dict[str, Any] | None:
        if not can_read(request.user, family):
            return None
        schedule = family_schedule(family)
        if not schedule:
            return None
        lost = _lost(request, family)
        may_record = can_record(request.user, family)
        active = lost is None and family.status in (FamilyStatus.CONSENTED, FamilyStatus.RANDOMISED)
        on = today()
        return {
            "family": family,
            "schedule": schedule,
            "lost": lost,
            "may_record": may_record,
            "may_lose": may_record and lost is None and family.status == FamilyStatus.RANDOMISED,
            # The same rule as selectors.may_see_contact_details, from the schedule already read.
            "may_see_contact": may_record and active and any(bookable(a, on) for a, _state in schedule),
        }

    def timeline_sources(self, request: HttpRequest, family: Family) -> list[tuple[type[models.Model], str]]:
        # The assessments' and the loss's history (free text after randomisation is hidden from blinded viewers by
        # the timeline itself); never BlindingGuess.
        if not can_read(request.user, family):
            return []
        sources: list[tuple[type[models.Model], str]] = [(Assessment, "family_id")]
        if _lost(request, family) is not None:
            sources.append((LostToFollowUp, "family_id"))
        return sources
