"""Who may see an arm, and reads of the allocation lists that several views share."""

from dataclasses import dataclass
from fractions import Fraction

from django.db.models import Prefetch, QuerySet
from django.utils import formats
from django.utils.translation import gettext as _

from families.models import Family
from randomization import sequence
from randomization.models import Allocation, AllocationList, Arm, ListSegment, Unblinding, Unsealing, UnsealingRole
from trial.models import Site, TrialSettings
from trial.roles import Role, User, can_at_site, has_role, is_blinded

# Roles that see an allocated family's arm (at the family's site; the PI everywhere). Everyone else sees
# nothing of the randomisation but the family's status.
ARM_ROLES = (Role.RESEARCHER, Role.PRINCIPAL_INVESTIGATOR)
LIST_ROLES = (Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR)


def arm_visible_to(user: User, family: Family) -> bool:
    if is_blinded(user):
        return Unblinding.objects.filter(family=family, user=user.pk).exists()
    return can_at_site(user, family.site_id, *ARM_ROLES)


def can_randomise(user: User, family: Family) -> bool:
    # A blinded user never randomises: the arm is shown to whoever randomises.
    return not is_blinded(user) and can_at_site(user, family.site_id, Role.RESEARCHER)


def intervention_families(families: QuerySet[Family] | None = None) -> QuerySet[Family]:
    """Families randomised to the Family Partner intervention (of `families`, or all): the one place that says
    which families are the intervention's. (The database's own check on Family Partner assignments, in visits'
    migration 0002, is the same rule in SQL.)"""
    return (Family.objects.all() if families is None else families).filter(allocation__arm=Arm.INTERVENTION)


def is_intervention_family(family: Family) -> bool:
    return intervention_families(Family.objects.filter(pk=family.pk)).exists()


def allocation_of(family: Family) -> Allocation | None:
    return (
        Allocation.objects.select_related("randomised_by", "site", "annotation__annotated_by")
        .filter(family=family)
        .first()
    )


@dataclass
class ListState:
    """A site and its list's metadata: what a data manager may see of a sealed list."""

    site: Site
    allocation_list: AllocationList | None
    low: bool = False
    exhausted: bool = False
    # The list's generations are missing or unreadable (changed behind the database's back): nothing can be
    # computed from them, and verification fails.
    damaged: bool = False
    predictability_percent: str = ""


def list_state(site: Site, allocation_list: AllocationList | None, trial_settings: TrialSettings) -> ListState:
    """Whether a sealed list is used up or running low (the banner and e-mail thresholds), whether it is damaged,
    and its predictability. Reads the list's generations through `allocation_list.segments.all()`: prefetch them."""
    state = ListState(site, allocation_list)
    if allocation_list is not None:
        state.damaged = not generations_intact(allocation_list)
        if not state.damaged:
            state.predictability_percent = percent(list_predictability(allocation_list))
        if allocation_list.is_sealed:
            state.exhausted = allocation_list.remaining == 0
            state.low = not state.exhausted and trial_settings.is_low_stock(
                remaining=allocation_list.remaining, length=allocation_list.length
            )
    return state


def generations_intact(allocation_list: AllocationList) -> bool:
    """Whether the list's generations are all there, numbered 1, 2, ..., each with a usable design, and together
    cover positions 1 to the list's length. Reads `allocation_list.segments.all()`: prefetch them."""
    segments = list(allocation_list.segments.all())
    if not segments or [segment.number for segment in segments] != list(range(1, len(segments) + 1)):
        return False
    next_position = 1
    for segment in segments:
        if segment.first_position != next_position:
            return False
        if sequence.stored_design(segment.block_sizes, allocation_list.ratio) is None:
            return False
        next_position = segment.last_position + 1
    return next_position == allocation_list.length + 1


def lists_with_generations() -> QuerySet[AllocationList]:
    """Lists with their site, unsealing and generations (in order, with who made them), in three queries."""
    # Pages never need the seeds: they stay encrypted in the database.
    generations = ListSegment.objects.select_related("created_by").defer("seed").order_by("number")
    return AllocationList.objects.select_related("site", "created_by", "unsealing").prefetch_related(
        Prefetch("segments", queryset=generations)
    )


def list_states() -> list[ListState]:
    lists = {allocation_list.site_id: allocation_list for allocation_list in lists_with_generations()}
    trial_settings = TrialSettings.current()
    return [list_state(site, lists.get(site.pk), trial_settings) for site in Site.objects.order_by("code")]


def can_agree_to_unsealing(user: User, unsealing: Unsealing) -> bool:
    """Unsealing takes two people of different roles: a PI agrees to a data manager's request, a data manager
    to a PI's; never the person who asked."""
    needed = Role.PRINCIPAL_INVESTIGATOR if unsealing.requested_as == UnsealingRole.DATA_MANAGER else Role.DATA_MANAGER
    return unsealing.approved_at is None and unsealing.requested_by_id != user.pk and has_role(user, needed)


def list_predictability(allocation_list: AllocationList) -> float:
    """The convergence-strategy share of correct guesses over the whole list: each generation's design, weighted
    by the generation's length (docs/allocation-lists.md). Every generation ends on a whole block, so the guesser
    starts each one at the ratio. Only for a list whose generations are intact (generations_intact)."""
    correct, total = Fraction(0), 0
    for segment in allocation_list.segments.all():
        design = sequence.stored_design(segment.block_sizes, allocation_list.ratio)
        if design is None:
            raise ValueError(f"generation {segment.number} of {allocation_list} names no usable design")
        length = segment.last_position - segment.first_position + 1
        correct += sequence.predictability(design) * length
        total += length
    return float(correct / total)


def percent(share: float) -> str:
    """A share as a percentage with one decimal, in the page's language ("70.3%", "70,3 %")."""
    return _("%(percent)s%%") % {"percent": formats.number_format(round(share * 100, 1), 1)}


def recent_unblindings(limit: int = 20) -> QuerySet[Unblinding]:
    return Unblinding.objects.select_related("family", "user", "unblinded_by").order_by("-unblinded_at")[:limit]
