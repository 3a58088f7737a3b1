"""The life of a site's allocation list: generating it, extending it, verifying it against its seeds and
commitments, and unsealing it (two people). Randomising a family from it is in services.py.

Every list is specified in docs/allocation-lists.md, so that anyone can recompute it from its seeds.
"""

import math
import secrets
from dataclasses import asdict, dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from randomization import sequence
from randomization.kinds import LIST_STOPPED, tell_data_managers
from randomization.models import (
    Allocation,
    AllocationEntry,
    AllocationList,
    ListSegment,
    ListSuspension,
    Unsealing,
    UnsealingRole,
    Verification,
)
from randomization.selectors import (
    SAME_PERSON_REVIEW,
    SAME_PERSON_UNSEALING,
    design_predictability_percent,
    finding_key,
    other_role,
    review_agreement_refusal,
    review_is_stale,
    unsealing_refusal,
)
from trial.audit import save_as
from trial.events import record_event
from trial.models import EventKind, Site, TrialSettings
from trial.roles import Role, has_role

# A list (or an extension) longer than this is a typing mistake, not a trial of 45 families.
MAX_LIST_LENGTH = 2000


def _require_data_manager(user: User) -> None:
    if not has_role(user, Role.DATA_MANAGER):
        raise PermissionDenied


def minimum_length(site: Site, trial_settings: TrialSettings) -> int:
    """The site's expected recruitment plus the configured margin (20 % by default), rounded up."""
    return max(1, math.ceil(site.expected_recruitment * (100 + trial_settings.allocation_margin_percent) / 100))


def check_design(design: sequence.Design) -> None:
    problems = design.problems()
    if "ratio" in problems:
        raise ValidationError({"ratio": _("Both sides of the ratio must be whole numbers of at least 1.")})
    if "block_sizes" in problems:
        raise ValidationError({"block_sizes": _("Give at least one block size, each at least 2.")})
    if "block_sizes_multiple" in problems:
        raise ValidationError(
            {
                "block_sizes": _("Each block size must be a multiple of %(unit)s (the ratio's sum).")
                % {"unit": sum(design.ratio)}
            }
        )
    if "block_sizes_too_large" in problems:
        raise ValidationError(
            {"block_sizes": _("Block sizes above %(n)s are not allowed.") % {"n": sequence.MAX_BLOCK_SIZE}}
        )


@dataclass(frozen=True)
class Finding:
    """One difference between the list as stored and as recomputed. It names positions, never arms."""

    kind: str
    position: int | None = None
    segment: int | None = None
    stored: int | None = None
    expected: int | None = None


@sensitive_variables("seed")
@dataclass(frozen=True)
class DesignPreview:
    """What the data manager sees before a list is generated or extended with a design."""

    design: sequence.Design
    predictability_percent: str
    single_size: bool


def design_preview(*, block_sizes: list[int], ratio: tuple[int, int]) -> DesignPreview:
    """The design asked for, checked, with its predictability; a ValidationError names what is wrong with it."""
    design = sequence.design(block_sizes, ratio)
    check_design(design)
    return DesignPreview(design, design_predictability_percent(design), len(design.block_sizes) == 1)


def check_design_reason(design: sequence.Design, design_reason: str) -> str:
    """The reason for a single block size, required when the design has one: with one known size the last
    entry of every block can be foreseen (docs/allocation-lists.md, "Predictability")."""
    design_reason = design_reason.strip()
    if len(design.block_sizes) == 1 and not design_reason:
        raise ValidationError(
            {
                "design_reason": _(
                    "With a single block size the last entry of every block can be foreseen: give the reason "
                    "for choosing it."
                )
            }
        )
    return design_reason


def _segments_of(allocation_list: AllocationList) -> tuple[list[ListSegment], list[sequence.Segment], list[Finding]]:
    """The list's stored generations, what they say (seed, design, length) for recomputing the list, and what
    makes them unusable: a generation missing, or one whose seed or design cannot be read (a damaged record)."""
    # The seeds are read one by one, so that one unreadable seed is a finding, not an error.
    stored = list(allocation_list.segments.defer("seed").order_by("number"))
    numbers = {segment.number for segment in stored}
    problems = [
        Finding("generation_missing", segment=number)
        for number in range(1, max(numbers, default=1) + 1)
        if number not in numbers
    ]
    segments = []
    for segment in stored:
        design = sequence.stored_design(segment.block_sizes, allocation_list.ratio)
        try:
            seed = bytes.fromhex(segment.seed)
        except (ImproperlyConfigured, ValueError, TypeError):
            seed = b""
        if design is None or not seed or not 1 <= segment.min_length <= MAX_LIST_LENGTH:
            problems.append(Finding("generation_unusable", segment=segment.number))
        else:
            segments.append(sequence.Segment(seed, design, segment.min_length))
    return stored, segments, problems


@sensitive_variables("seed", "entries")
def allocation_list_generate(
    *,
    site: Site,
    generated_by: User,
    block_sizes: list[int] | None = None,
    ratio: tuple[int, int] | None = None,
    length: int | None = None,
    design_reason: str = "",
) -> AllocationList:
    """A site's one allocation list, from a fresh secret seed. Only its commitment is ever shown."""
    _require_data_manager(generated_by)
    trial_settings = TrialSettings.current()
    design = sequence.design(
        block_sizes or trial_settings.allocation_block_sizes,
        ratio or (trial_settings.allocation_ratio_intervention, trial_settings.allocation_ratio_control),
    )
    check_design(design)
    design_reason = check_design_reason(design, design_reason)
    minimum = minimum_length(site, trial_settings)
    length = minimum if length is None else length
    if length < minimum:
        raise ValidationError(
            {
                "length": _(
                    "The list must hold at least %(minimum)s entries: %(site)s expects %(expected)s families, "
                    "plus %(margin)s%%."
                )
                % {
                    "minimum": minimum,
                    "site": site.code,
                    "expected": site.expected_recruitment,
                    "margin": trial_settings.allocation_margin_percent,
                }
            }
        )
    if length > MAX_LIST_LENGTH:
        raise ValidationError({"length": _("A list can hold at most %(n)s entries.") % {"n": MAX_LIST_LENGTH}})
    seed = secrets.token_bytes(32)
    segment = sequence.Segment(seed, design, length)
    entries = sequence.generate(segment)
    digest = sequence.commitment(site.code, [segment], entries)
    try:
        with transaction.atomic():
            # Two data managers generating for one site at once: the site's lock makes the second one
            # find the first one's list (and the unique site of a list stands behind it).
            Site.objects.select_for_update().get(pk=site.pk)
            if AllocationList.objects.filter(site=site).exists():
                raise _already_has_a_list(site)
            allocation_list = AllocationList.objects.create(
                site=site,
                ratio_intervention=design.ratio[0],
                ratio_control=design.ratio[1],
                length=len(entries),
                commitment=digest,
                created_by=generated_by,
            )
            save_as(
                ListSegment(
                    allocation_list=allocation_list,
                    number=1,
                    seed=seed.hex(),
                    block_sizes=list(design.block_sizes),
                    min_length=length,
                    first_position=1,
                    last_position=len(entries),
                    commitment=digest,
                    design_reason=design_reason,
                    created_by=generated_by,
                ),
                generated_by,
            )
            _store_entries(allocation_list, entries)
    except IntegrityError:
        raise _already_has_a_list(site) from None
    return allocation_list


def _already_has_a_list(site: Site) -> ValidationError:
    return ValidationError(
        {"site": _("%(site)s already has an allocation list; extend it instead.") % {"site": site.code}}
    )


@sensitive_variables("entries")
def _store_entries(allocation_list: AllocationList, entries: list[sequence.Entry]) -> None:
    AllocationEntry.objects.bulk_create(
        AllocationEntry(allocation_list=allocation_list, position=entry.position, sealed_arm=entry.arm)
        for entry in entries
    )


@sensitive_variables("entries")
def allocation_list_extend(
    *,
    allocation_list: AllocationList,
    additional: int,
    reason: str,
    extended_by: User,
    block_sizes: list[int] | None = None,
    design_reason: str = "",
) -> AllocationList:
    """Further blocks at the end of a site's list, from a new seed, with a new commitment to the whole list."""
    _require_data_manager(extended_by)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for extending the list.")})
    if not 1 <= additional <= MAX_LIST_LENGTH:
        raise ValidationError({"additional": _("Add between 1 and %(n)s entries.") % {"n": MAX_LIST_LENGTH}})
    # Checked before the list's lock, which every randomisation at the site waits for (a list's ratio never
    # changes).
    design = sequence.design(block_sizes or TrialSettings.current().allocation_block_sizes, allocation_list.ratio)
    check_design(design)
    design_reason = check_design_reason(design, design_reason)
    with transaction.atomic():
        # Randomisations at the site wait while the list grows, so none sees a half-extended list.
        allocation_list = AllocationList.objects.select_for_update().select_related("site").get(pk=allocation_list.pk)
        if not allocation_list.is_sealed:
            raise ValidationError(_("An unsealed list cannot be extended: recruitment from it has ended."))
        if allocation_list.is_suspended:
            raise ValidationError(
                _(
                    "The list is stopped after a failed verification, so it cannot be extended until a data manager "
                    "and the principal investigator have recorded what was found."
                )
            )
        if allocation_list.length + additional > MAX_LIST_LENGTH:
            raise ValidationError({"additional": _("A list can hold at most %(n)s entries.") % {"n": MAX_LIST_LENGTH}})
        # The verification is recorded whatever it finds (a failure stops the list); the extension is refused
        # after this transaction commits that record.
        findings, segments = _check(allocation_list)
        verification = _record(allocation_list, findings, verified_by=extended_by)
        if verification.passed:
            _add_generation(allocation_list, segments, design, additional, reason, design_reason, extended_by)
    if not verification.passed:
        raise ValidationError(
            _("The list does not pass verification, so it cannot be extended. Its page shows what differs.")
        )
    return allocation_list


@sensitive_variables("seed", "expected")
def _add_generation(
    allocation_list: AllocationList,
    segments: list[sequence.Segment],
    design: sequence.Design,
    additional: int,
    reason: str,
    design_reason: str,
    extended_by: User,
) -> None:
    """Append a generation from a new seed to a list that passed verification (locked by the caller)."""
    seed = secrets.token_bytes(32)
    segments = [*segments, sequence.Segment(seed, design, additional)]
    expected = sequence.generate_list(segments)
    digest = sequence.commitment(allocation_list.site.code, segments, expected)
    save_as(
        ListSegment(
            allocation_list=allocation_list,
            number=len(segments),
            seed=seed.hex(),
            block_sizes=list(design.block_sizes),
            min_length=additional,
            first_position=allocation_list.length + 1,
            last_position=len(expected),
            commitment=digest,
            reason=reason,
            design_reason=design_reason,
            created_by=extended_by,
        ),
        extended_by,
    )
    _store_entries(allocation_list, expected[allocation_list.length :])
    allocation_list.length = len(expected)
    allocation_list.commitment = digest
    allocation_list.exhausted_alert_sent_at = None
    allocation_list.low_stock_alert_sent_at = None
    allocation_list.save(update_fields=["length", "commitment", "exhausted_alert_sent_at", "low_stock_alert_sent_at"])


# --- Verification -----------------------------------------------------------------------------------------


@sensitive_variables("expected", "stored_arms")
def _verify(
    allocation_list: AllocationList,
    stored_segments: list[ListSegment],
    segments: list[sequence.Segment],
    problems: list[Finding],
) -> list[Finding]:
    stored_arms = dict(
        AllocationEntry.objects.filter(allocation_list=allocation_list).values_list("position", "sealed_arm")
    )
    if problems:
        # Without all its generations the list cannot be recomputed; what the stored records say of each
        # other is still checked.
        return [*problems, *_allocation_findings(allocation_list, stored_arms)]
    findings: list[Finding] = []
    expected = sequence.generate_list(segments)
    for entry in expected:
        arm = stored_arms.get(entry.position)
        if arm is None:
            findings.append(Finding("entry_missing", position=entry.position))
        elif arm != entry.arm:
            findings.append(Finding("entry_differs", position=entry.position))
    for position in sorted(set(stored_arms) - {entry.position for entry in expected}):
        findings.append(Finding("entry_extra", position=position))
    if allocation_list.length != len(expected):
        findings.append(Finding("length_differs", stored=allocation_list.length, expected=len(expected)))
    for index, stored in enumerate(stored_segments):
        prefix = [entry for entry in expected if entry.position <= stored.last_position]
        if sequence.commitment(allocation_list.site.code, segments[: index + 1], prefix) != stored.commitment:
            findings.append(Finding("segment_commitment_differs", segment=stored.number))
    if allocation_list.commitment != stored_segments[-1].commitment:
        findings.append(Finding("list_commitment_differs"))
    return findings + _allocation_findings(allocation_list, stored_arms)


def _allocation_findings(allocation_list: AllocationList, stored_arms: dict[int, str]) -> list[Finding]:
    """Every allocation made from the list against its stored entry, and the used entries against 1..used."""
    findings = []
    allocations = list(
        Allocation.objects.filter(entry__allocation_list=allocation_list).values_list(
            "position", "entry__position", "arm"
        )
    )
    for position, entry_position, arm in allocations:
        if position != entry_position or stored_arms.get(entry_position) != arm:
            findings.append(Finding("allocation_differs", position=entry_position))
    used_positions = sorted(entry_position for _position, entry_position, _arm in allocations)
    if used_positions != list(range(1, allocation_list.used + 1)):
        findings.append(Finding("used_differs", stored=allocation_list.used, expected=len(used_positions)))
    return findings


def _check(allocation_list: AllocationList) -> tuple[list[Finding], list[sequence.Segment]]:
    """What verification finds in the list (locked by the caller), and its generations for recomputing it."""
    stored_segments, segments, problems = _segments_of(allocation_list)
    return _verify(allocation_list, stored_segments, segments, problems), segments


def _record(allocation_list: AllocationList, findings: list[Finding], *, verified_by: User | None) -> Verification:
    """Record a verification of the list (locked by the caller). A failure stops a sealed list at once, unless the
    list is stopped already or every finding is one a data manager and the PI reviewed and accepted; the data
    managers are told once per stop."""
    verification = Verification.objects.create(
        allocation_list=allocation_list,
        passed=not findings,
        findings=[{key: value for key, value in asdict(finding).items() if value is not None} for finding in findings],
        verified_by=verified_by,
    )
    if verification.passed or not allocation_list.is_sealed or allocation_list.is_suspended:
        return verification
    accepted = {
        finding_key(finding)
        for reviewed in Verification.objects.filter(
            pk__in=ListSuspension.objects.filter(allocation_list=allocation_list, approved_at__isnull=False).values(
                "reviewed_verification"
            )
        )
        for finding in reviewed.findings
    }
    if {finding_key(finding) for finding in verification.findings} <= accepted:
        return verification
    suspension = ListSuspension(allocation_list=allocation_list, verification=verification)
    if verified_by is not None:
        save_as(suspension, verified_by)
    else:
        suspension.save()  # the daily job: the history names no person
    allocation_list.suspended_at = suspension.suspended_at
    allocation_list.save(update_fields=["suspended_at"])
    tell_data_managers(
        kind=LIST_STOPPED,
        about=f"listsuspension:{suspension.pk}",
        context={"site": allocation_list.site.code},
        site=allocation_list.site,
    )
    return verification


def allocation_list_verify(*, allocation_list: AllocationList, verified_by: User | None) -> Verification:
    """Recompute the list from its seeds and check it against the stored entries, the allocations made
    from it, and every commitment given; the result is recorded, and a failure stops the list."""
    if verified_by is not None:
        _require_data_manager(verified_by)
    with transaction.atomic():
        # Under the list's lock: a randomisation committed between the reads of the entries, the allocations
        # and the count of used entries would look like a skipped entry, and stop the list for nothing.
        allocation_list = AllocationList.objects.select_for_update().select_related("site").get(pk=allocation_list.pk)
        findings, _segments = _check(allocation_list)
        return _record(allocation_list, findings, verified_by=verified_by)


def allocation_lists_verify_all() -> list[Verification]:
    """The daily verification of every list (by the system, not a person): each in its own transaction."""
    return [
        allocation_list_verify(allocation_list=allocation_list, verified_by=None)
        for allocation_list in AllocationList.objects.order_by("site__code")
    ]


def finding_text(finding: dict) -> str:
    """A finding in the reader's language."""
    messages = {
        "entry_missing": _("Position %(position)s is missing from the stored list."),
        "entry_differs": _("The arm stored at position %(position)s is not the one the seed gives."),
        "entry_extra": _("Position %(position)s is stored but not part of the recomputed list."),
        "length_differs": _("The list says it has %(stored)s entries; the seeds give %(expected)s."),
        "segment_commitment_differs": _("The commitment given at generation %(segment)s does not match."),
        "list_commitment_differs": _("The list's current commitment is not the one its last generation gave."),
        "allocation_differs": _("The allocation made from position %(position)s does not match the list."),
        "generation_missing": _("Generation %(segment)s of the list is missing: the list cannot be recomputed."),
        "generation_unusable": _(
            "Generation %(segment)s cannot be read (its seed, design or length): the list cannot be recomputed."
        ),
        "used_differs": _(
            "The list says %(stored)s entries are used, but %(expected)s allocations were made, or some were skipped."
        ),
    }
    template = messages.get(finding.get("kind", ""), _("Unknown finding."))
    return template % {key: finding.get(key, "") for key in ("position", "segment", "stored", "expected")}


# --- Unsealing -------------------------------------------------------------------------------------------


def _unsealing_role(user: User) -> str:
    if has_role(user, Role.DATA_MANAGER):
        return UnsealingRole.DATA_MANAGER
    if has_role(user, Role.PRINCIPAL_INVESTIGATOR):
        return UnsealingRole.PRINCIPAL_INVESTIGATOR
    raise PermissionDenied


def allocation_list_request_unsealing(*, allocation_list: AllocationList, reason: str, requested_by: User) -> Unsealing:
    role = _unsealing_role(requested_by)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for unsealing the list.")})
    with transaction.atomic():
        allocation_list = AllocationList.objects.select_for_update().get(pk=allocation_list.pk)
        if Unsealing.objects.filter(allocation_list=allocation_list).exists():
            raise ValidationError(_("Unsealing of this list has already been asked for."))
        unsealing = Unsealing(
            allocation_list=allocation_list, reason=reason, requested_by=requested_by, requested_as=role
        )
        save_as(unsealing, requested_by)
    return unsealing


def allocation_list_approve_unsealing(*, allocation_list: AllocationList, approved_by: User) -> Unsealing:
    """The second person agrees: a principal investigator to a data manager's request, or the other way round."""
    with transaction.atomic():
        allocation_list = AllocationList.objects.select_for_update().get(pk=allocation_list.pk)
        unsealing = Unsealing.objects.filter(allocation_list=allocation_list).first()
        if unsealing is None:
            raise ValidationError(_("Nobody has asked to unseal this list."))
        if unsealing.approved_at is not None:
            return unsealing
        refusal = unsealing_refusal(approved_by, unsealing)
        if refusal:
            raise ValidationError(refusal)
        if not has_role(approved_by, other_role(unsealing.requested_as)):
            raise PermissionDenied
        unsealing.approved_by = approved_by
        unsealing.approved_at = timezone.now()
        _save_agreement(unsealing, approved_by, refusal=str(SAME_PERSON_UNSEALING))
        allocation_list.unsealed_at = unsealing.approved_at
        allocation_list.save(update_fields=["unsealed_at"])
    return unsealing


def _save_agreement(record: Unsealing | ListSuspension, approved_by: User, *, refusal: str) -> None:
    """Save the second person's agreement. The database refuses the first person as the second
    (`*_needs_two_people`): should a check above ever miss it, the user is refused with a message, not a 500."""
    try:
        with transaction.atomic():
            save_as(record, approved_by)
    except IntegrityError:
        raise ValidationError(refusal) from None


# --- A list stopped after a failed verification -----------------------------------------------------------


def _open_suspension(allocation_list: AllocationList) -> ListSuspension | None:
    return ListSuspension.objects.filter(allocation_list=allocation_list, approved_at__isnull=True).first()


def allocation_list_review_suspension(
    *, allocation_list: AllocationList, finding: str, decision: str, reviewed_by: User
) -> ListSuspension:
    """A data manager or the PI records what was found behind the failed verification and what they decided; the
    list allocates again once a person of the other role agrees. Written again when the list showed new findings
    after it was written."""
    role = _unsealing_role(reviewed_by)
    finding, decision = finding.strip(), decision.strip()
    missing = {}
    if not finding:
        missing["finding"] = _("Write what was found.")
    if not decision:
        missing["decision"] = _("Write what was decided, and why.")
    if missing:
        raise ValidationError(missing)
    with transaction.atomic():
        allocation_list = AllocationList.objects.select_for_update().get(pk=allocation_list.pk)
        suspension = _open_suspension(allocation_list)
        if suspension is None:
            raise ValidationError(_("The list is not stopped: there is nothing to review."))
        if suspension.reviewed_at is not None and not review_is_stale(suspension):
            raise ValidationError(
                _("What was found is recorded already; it waits for the agreement of the other role.")
            )
        suspension.finding, suspension.decision = finding, decision
        suspension.reviewed_by, suspension.reviewed_as, suspension.reviewed_at = reviewed_by, role, timezone.now()
        suspension.reviewed_verification = allocation_list.verifications.order_by("-verified_at", "-pk").first()
        save_as(suspension, reviewed_by)
    return suspension


def allocation_list_approve_review(*, allocation_list: AllocationList, approved_by: User) -> ListSuspension:
    """The second person agrees with what was found and decided: the list allocates again, and the findings of the
    verification reviewed no longer stop it."""
    with transaction.atomic():
        allocation_list = AllocationList.objects.select_for_update().get(pk=allocation_list.pk)
        suspension = _open_suspension(allocation_list)
        if suspension is None:
            # Agreed a moment ago (a double click, the colleague of the same role): nothing is left to agree to.
            agreed = allocation_list.suspensions.filter(approved_at__isnull=False).first()
            if agreed is not None:
                return agreed
            raise ValidationError(_("The list is not stopped: there is nothing to agree to."))
        if suspension.reviewed_at is None:
            raise ValidationError(_("Nobody has recorded what was found yet."))
        refusal = review_agreement_refusal(approved_by, suspension)
        if refusal:
            raise ValidationError(refusal)
        if not has_role(approved_by, other_role(suspension.reviewed_as)):
            raise PermissionDenied
        if review_is_stale(suspension):
            raise ValidationError(
                _(
                    "The list was verified again after this was written and shows findings it does not cover: what "
                    "was found must be written again before anyone agrees."
                )
            )
        suspension.approved_by, suspension.approved_at = approved_by, timezone.now()
        _save_agreement(suspension, approved_by, refusal=str(SAME_PERSON_REVIEW))
        allocation_list.suspended_at = None
        allocation_list.save(update_fields=["suspended_at"])
    return suspension


# --- An unsealed list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsealedEntry:
    position: int
    # None when the list's generations are damaged and its blocks cannot be recomputed.
    block: int | None
    block_size: int | None
    arm: str
    study_id: str | None


def unsealed_entries(allocation_list: AllocationList, *, viewed_by: User) -> list[UnsealedEntry]:
    """Every stored entry of an unsealed list, with its block (recomputed from the seeds, when the generations
    allow) and the family it went to. Each view is recorded (who, which list)."""
    if allocation_list.is_sealed:
        raise PermissionDenied
    record_event(
        kind=EventKind.UNSEALED_LIST_VIEWED,
        user=viewed_by,
        site=allocation_list.site,
        subject=allocation_list.site.code,
    )
    _stored, segments, problems = _segments_of(allocation_list)
    blocks = {} if problems else {entry.position: entry for entry in sequence.generate_list(segments)}
    stored_arms = AllocationEntry.objects.filter(allocation_list=allocation_list).values_list("position", "sealed_arm")
    families = dict(
        Allocation.objects.filter(entry__allocation_list=allocation_list).values_list("position", "family__study_id")
    )
    unsealed = []
    for position, arm in stored_arms.order_by("position"):
        block = blocks.get(position)
        unsealed.append(
            UnsealedEntry(
                position,
                block.block if block else None,
                block.block_size if block else None,
                arm,
                families.get(position),
            )
        )
    return unsealed


def unsealed_canonical_text(allocation_list: AllocationList, *, downloaded_by: User) -> str | None:
    """The text whose SHA-256 is the list's commitment, seeds included: for checking it with any tool. None
    when the list's generations are damaged, so that no text can be recomputed. Each download is recorded."""
    if allocation_list.is_sealed:
        raise PermissionDenied
    _stored, segments, problems = _segments_of(allocation_list)
    if problems:
        return None
    record_event(
        kind=EventKind.UNSEALED_LIST_DOWNLOADED,
        user=downloaded_by,
        site=allocation_list.site,
        subject=allocation_list.site.code,
    )
    return sequence.canonical_text(allocation_list.site.code, segments, sequence.generate_list(segments))
