"""The follow-up section of the family page (families.sections): the schedule and each assessment's state, for the
users who read follow-ups at the family's site (assessors, researchers, the PI). The schedule is the same in both
arms, so it reveals nothing; the assessor's guess of the arm is in no section and no timeline."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from families.models import Family, FamilyStatus
from followups.models import Assessment, LostToFollowUp
from followups.selectors import can_read, can_record, family_schedule, may_see_contact_details


class FollowUpSection:
    template_name = "followups/family_section.html"

    def context(self, request: HttpRequest, family: Family) -> dict[str, Any] | None:
        if not can_read(request.user, family):
            return None
        schedule = family_schedule(family)
        if not schedule:
            return None
        lost = LostToFollowUp.objects.filter(family=family).first()
        may_record = can_record(request.user, family)
        return {
            "family": family,
            "schedule": schedule,
            "lost": lost,
            "may_record": may_record,
            "may_lose": may_record and lost is None and family.status == FamilyStatus.RANDOMISED,
            "may_see_contact": may_record and may_see_contact_details(request.user, family),
        }

    def timeline_sources(self, request: HttpRequest, family: Family) -> list[tuple[type[models.Model], str]]:
        # The assessments' and the loss's history (free text after randomisation is hidden from blinded viewers by
        # the timeline itself); never BlindingGuess.
        if not can_read(request.user, family):
            return []
        return [(Assessment, "family_id"), (LostToFollowUp, "family_id")]
