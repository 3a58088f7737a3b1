"""Who may see an arm, and reads of the allocation lists that several views share."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from django.db.models import Count, Prefetch, QuerySet
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from families.models import Consent, Family, FamilyStatus, Screening
from randomization import sequence
from randomization.models import (
    Allocation,
    AllocationList,
    Arm,
    ListSegment,
    ListSuspension,
    Unblinding,
    Unsealing,
    UnsealingRole,
)
from trial.models import AuditEvent, EventKind, Site, TrialSettings
from trial.roles import Role, User, can_at_site, has_role, is_blinded, site_ids_for

# Roles that see an allocated family's arm (at the family's site; the PI everywhere). Everyone else sees
# nothing of the randomisation but the family's status.
ARM_ROLES = (Role.RESEARCHER, Role.PRINCIPAL_INVESTIGATOR)
LIST_ROLES = (Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR)


def arm_visible_to(user: User, family: Family) -> bool:
    return family.pk in families_with_visible_arm(user, [family])


def families_with_visible_arm(user: User, families: Iterable[Family]) -> set[int]:
    """The primary keys of those of `families` whose arm `user` may see (`arm_visible_to`, for a whole page of
    families at once): a blinded user only the families the PI unblinded them for (one query), anyone else the
    families of the sites where they hold an arm role (no query)."""
    if is_blinded(user):
        return set(
            Unblinding.objects.filter(user=user.pk, family__in=[family.pk for family in families]).values_list(
                "family_id", flat=True
            )
        )
    return {family.pk for family in families if can_at_site(user, family.site_id, *ARM_ROLES)}


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


@dataclass(frozen=True)
class EligibilitySummary:
    """What makes a family randomisable, for the researcher to check on the randomise page."""

    screening: Screening | None
    consent: Consent | None


def eligibility_summary(family: Family) -> EligibilitySummary:
    return EligibilitySummary(
        screening=Screening.objects.select_related("screened_by")
        .filter(family=family)
        .order_by("-recorded_at", "-pk")
        .first(),
        consent=Consent.objects.select_related("obtained_by").filter(family=family).first(),
    )


def receipt_allocation(user: User, family: Family) -> Allocation | None:
    """The family's allocation for its receipt, or None when this user may not see it: a receipt is for those
    who see the arm (the site's researchers and the PI), never for a blinded user, even one unblinded for the
    family (the receipt shows more than the arm)."""
    if is_blinded(user) or not arm_visible_to(user, family):
        return None
    return allocation_of(family)


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
    # Stopped after a failed verification, until a data manager and the PI record what was found.
    suspended: bool = False
    predictability_percent: str = ""


def list_state(site: Site, allocation_list: AllocationList | None, trial_settings: TrialSettings) -> ListState:
    """Whether a sealed list is used up or running low (the banner and e-mail thresholds), whether it is damaged,
    and its predictability. Reads the list's generations through `allocation_list.segments.all()`: prefetch them."""
    state = ListState(site, allocation_list)
    if allocation_list is not None:
        state.damaged = not generations_intact(allocation_list)
        state.suspended = allocation_list.is_sealed and allocation_list.is_suspended
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


def other_role(role: str) -> str:
    """The role whose agreement a data manager's request needs (the PI's), and the other way round."""
    return Role.PRINCIPAL_INVESTIGATOR if role == UnsealingRole.DATA_MANAGER else Role.DATA_MANAGER


SAME_PERSON_UNSEALING = gettext_lazy(
    "You asked to unseal this list yourself: another person, holding the other role, must agree."
)
SAME_PERSON_REVIEW = gettext_lazy(
    "You wrote what was found yourself: another person, holding the other role, must agree."
)


def unsealing_refusal(user: User, unsealing: Unsealing) -> str | None:
    """Why `user` may not be the second person of this unsealing (an account holding both roles included)."""
    return str(SAME_PERSON_UNSEALING) if unsealing.requested_by_id == user.pk else None


def can_agree_to_unsealing(user: User, unsealing: Unsealing) -> bool:
    """Unsealing takes two people of different roles: a PI agrees to a data manager's request, a data manager
    to a PI's; never the person who asked."""
    return (
        unsealing.approved_at is None
        and has_role(user, other_role(unsealing.requested_as))
        and unsealing_refusal(user, unsealing) is None
    )


def review_agreement_refusal(user: User, suspension: ListSuspension) -> str | None:
    """Why `user` may not agree to what was written about a stopped list (an account holding both roles included)."""
    return str(SAME_PERSON_REVIEW) if suspension.reviewed_by_id == user.pk else None


def review_is_stale(suspension: ListSuspension) -> bool:
    """Whether the list was verified again after the review was written, with findings the review does not cover:
    then nobody may agree to it, and it must be written again."""
    reviewed_verification = suspension.reviewed_verification
    if reviewed_verification is None:
        return False
    latest = suspension.allocation_list.verifications.order_by("-verified_at", "-pk").first()
    if latest is None or latest.pk == reviewed_verification.pk:
        return False
    reviewed = {finding_key(finding) for finding in reviewed_verification.findings}
    return not {finding_key(finding) for finding in latest.findings} <= reviewed


def finding_key(finding: dict) -> str:
    """A recorded finding as one comparable value: the same difference found twice gives the same key."""
    return json.dumps(finding, sort_keys=True)


def can_write_review(user: User, suspension: ListSuspension | None) -> bool:
    return (
        suspension is not None
        and has_role(user, *LIST_ROLES)
        and (suspension.reviewed_at is None or review_is_stale(suspension))
    )


def can_agree_to_review(user: User, suspension: ListSuspension | None) -> bool:
    return (
        suspension is not None
        and suspension.reviewed_at is not None
        and has_role(user, other_role(suspension.reviewed_as))
        and review_agreement_refusal(user, suspension) is None
        and not review_is_stale(suspension)
    )


def latest_findings(allocation_list: AllocationList) -> list[dict]:
    """What the list's latest verification found (nothing when it passed or was never verified)."""
    latest = allocation_list.verifications.order_by("-verified_at", "-pk").first()
    return latest.findings if latest is not None else []


def open_suspension(allocation_list: AllocationList) -> ListSuspension | None:
    """The list's stop after a failed verification, while it lasts, with its verification and who wrote what."""
    return (
        ListSuspension.objects.select_related("verification", "reviewed_verification", "reviewed_by", "allocation_list")
        .filter(allocation_list=allocation_list, approved_at__isnull=True)
        .first()
    )


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


def design_predictability_percent(design: sequence.Design) -> str:
    """The predictability of a design a data manager is about to use, for the confirmation page."""
    return percent(float(sequence.predictability(design)))


def percent(share: float) -> str:
    """A share as a percentage with one decimal, in the page's language ("70.3%", "70,3 %")."""
    return _("%(percent)s%%") % {"percent": formats.number_format(round(share * 100, 1), 1)}


def recent_unblindings(limit: int = 20) -> QuerySet[Unblinding]:
    return Unblinding.objects.select_related("family", "user", "unblinded_by").order_by("-unblinded_at")[:limit]


def unsealed_list_events(allocation_list: AllocationList) -> QuerySet[AuditEvent]:
    """Who viewed the unsealed list's entries or downloaded its text, and when, newest first."""
    return AuditEvent.objects.filter(
        site=allocation_list.site_id,
        subject=allocation_list.site.code,
        kind__in=[EventKind.UNSEALED_LIST_VIEWED, EventKind.UNSEALED_LIST_DOWNLOADED],
    ).select_related("user")


# Who sees recruitment against its targets: the trial-wide roles for every site, researchers for theirs. It
# shows counts, never an arm.
RECRUITMENT_ROLES = (Role.PRINCIPAL_INVESTIGATOR, Role.DATA_MANAGER, Role.RESEARCHER)


def can_see_recruitment(user: User) -> bool:
    return has_role(user, *RECRUITMENT_ROLES)


@dataclass(frozen=True)
class RecruitmentRow:
    """Families randomised so far (withdrawn ones included: intention to treat) against a target, and families
    consented and waiting to be randomised."""

    key: str
    label: str
    randomised: int
    target: int
    waiting: int

    @property
    def percent(self) -> str:
        return percent(self.randomised / self.target) if self.target else "—"


@dataclass(frozen=True)
class Recruitment:
    sites: list[RecruitmentRow]
    # The trial's total against the target sample size; only for those who see every site.
    total: RecruitmentRow | None


def recruitment(user: User) -> Recruitment:
    """Recruitment at the sites `user` may see, in three queries."""
    site_ids = site_ids_for(user, *RECRUITMENT_ROLES)
    sites = Site.objects.order_by("code")
    if site_ids is not None:
        sites = sites.filter(pk__in=site_ids)
    randomised = dict(
        Allocation.objects.filter(site__in=sites).values_list("site").annotate(count=Count("pk")).order_by()
    )
    waiting = dict(
        Family.objects.filter(site__in=sites, status=FamilyStatus.CONSENTED)
        .values_list("site")
        .annotate(count=Count("pk"))
        .order_by()
    )
    rows = [
        RecruitmentRow(
            site.code, str(site), randomised.get(site.pk, 0), site.expected_recruitment, waiting.get(site.pk, 0)
        )
        for site in sites
    ]
    total = None
    if site_ids is None:
        total = RecruitmentRow(
            "total",
            _("The whole trial"),
            sum(row.randomised for row in rows),
            TrialSettings.current().target_sample_size,
            sum(row.waiting for row in rows),
        )
    return Recruitment(rows, total)
