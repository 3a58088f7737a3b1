"""The Family Partner work's part of the family list (families.family_list): "Assign a Family Partner" as the
next step of an intervention family waiting for one, for the researchers who manage the site's caseload (never
a blinded user: only intervention families get the step)."""

from collections.abc import Sequence

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from families.family_list import FamilyListPart, NextAction
from families.models import Family
from visits.selectors import can_manage_caseload, waiting_families


class WaitingListPart(FamilyListPart):
    def next_actions(self, request: HttpRequest, families: Sequence[Family]) -> dict[int, NextAction]:
        managed = {family.pk: family for family in families if can_manage_caseload(request.user, family.site_id)}
        if not managed:
            return {}
        waiting = waiting_families(None).filter(pk__in=managed).values_list("pk", flat=True)
        return {
            pk: NextAction(_("Assign a Family Partner"), reverse("visits:assign", args=[managed[pk].study_id]))
            for pk in waiting
        }
