"""The randomisation's part of the family list (families.family_list): the arm's column and filter, and
"Randomise" as the next step of a consented family.

Only for users who may see the arms of the listed families: researchers of their sites and the PI
(randomization.selectors.ARM_ROLES), never a blinded user. An assessor unblinded for one family sees its arm on
its page, not here: a column or filter for one family would say more about the others than nothing.
"""

from collections.abc import Sequence

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from families.family_list import FamilyListPart, ListColumn, ListFilter, NextAction
from families.models import Family, FamilyStatus
from randomization.models import Allocation, Arm
from randomization.selectors import ARM_ROLES, can_randomise
from trial.roles import User, is_blinded, site_ids_for


def _arm_sites(user: User) -> frozenset[int] | None:
    """The sites whose families' arms the user sees in the list (None: every site; empty: none)."""
    if is_blinded(user):
        return frozenset()
    return site_ids_for(user, *ARM_ROLES)


class AllocationListPart(FamilyListPart):
    def filters(self, request: HttpRequest) -> list[ListFilter]:
        sites = _arm_sites(request.user)
        if sites is not None and not sites:
            return []

        def by_arm(families: QuerySet[Family], arm: str) -> QuerySet[Family]:
            families = families.filter(allocation__arm=arm)
            return families if sites is None else families.filter(site_id__in=sites)

        return [ListFilter("arm", gettext_lazy("Arm"), Arm.choices, by_arm)]

    def columns(self, request: HttpRequest, families: Sequence[Family]) -> list[ListColumn]:
        sites = _arm_sites(request.user)
        if sites is not None and not sites:
            return []
        shown = [family.pk for family in families if sites is None or family.site_id in sites]
        labels = dict(Arm.choices)
        arms = Allocation.objects.filter(family_id__in=shown).order_by().values_list("family_id", "arm")
        return [ListColumn("arm", _("Arm"), {family_id: str(labels[arm]) for family_id, arm in arms})]

    def next_actions(self, request: HttpRequest, families: Sequence[Family]) -> dict[int, NextAction]:
        return {
            family.pk: NextAction(_("Randomise"), reverse("randomization:randomise", args=[family.study_id]))
            for family in families
            if family.status == FamilyStatus.CONSENTED and can_randomise(request.user, family)
        }
