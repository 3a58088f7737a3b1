"""Randomising a family, annotating a mistake, and emergency unblinding. Views and commands call these; the
life of the allocation lists themselves (generate, extend, verify, unseal) is in lists.py.

Randomisation takes the family's lock first and the list's lock last, and holds the list's lock only for
taking the next entry and storing the allocation: that lock is where simultaneous randomisations at a
site queue, so it is kept as short as it can be (see bench/run.py).
"""

from dataclasses import dataclass
from functools import cache

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from families.models import Family
from families.services import family_claim_for_randomisation, lock_family
from randomization.kinds import LIST_LOW, LIST_USED_UP, UNBLINDING, tell_data_managers
from randomization.models import (
    Allocation,
    AllocationAnnotation,
    AllocationEntry,
    AllocationList,
    Unblinding,
)
from randomization.preconditions import randomisation_refusals
from randomization.selectors import can_randomise
from randomization.signals import family_randomised
from trial.audit import save_as
from trial.events import record_event
from trial.models import EventKind, Site, TrialSettings
from trial.roles import Role, can_at_site, has_role, is_blinded

# --- Randomising a family --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Randomisation:
    allocation: Allocation
    created: bool


class _Refused(Exception):
    """A randomisation refused because of the site's list, or a condition of an app above (a baseline not yet
    recorded: randomization/preconditions.py): raised inside the transaction (which rolls back), so
    that the refusal is recorded (and the data managers told) after it."""

    def __init__(self, reason: str, message: str, list_id: int | None = None) -> None:
        self.reason, self.message, self.list_id = reason, message, list_id


# Takes the list's lock and counts the entry taken, in one statement (PostgreSQL and SQLite alike): the
# lock is held from here to the commit and every randomisation at the site waits for it, so the entry is
# read by a second statement and the allocation stored at once.
_TAKE_NEXT_POSITION = """
    UPDATE {list_table} SET used = used + 1
    WHERE site_id = %s AND used < length AND unsealed_at IS NULL AND suspended_at IS NULL
    RETURNING id, used, length
"""


def family_randomise(*, family: Family, confirmed_site: Site, randomised_by: User) -> Randomisation:
    """The family's allocation: the lowest unused entry of its site's list, stored before anyone sees it.

    Asking again (a double click, a reload, a colleague at the same moment) returns the allocation already
    made, never a second one. `confirmed_site` is the stratum the researcher confirmed on the page."""
    if not can_randomise(randomised_by, family):
        raise PermissionDenied
    try:
        with transaction.atomic():
            claimed = family_claim_for_randomisation(family=family, site=confirmed_site, randomised_by=randomised_by)
            if claimed is None:
                # Not a consented family of the confirmed site, or not any more: under the family's lock, a
                # family randomised a moment ago (a double click, a colleague) has its allocation, which is
                # returned, never a second one (the family's unique allocation stands behind this).
                family = lock_family(family)
                existing = Allocation.objects.filter(family=family).first()
                if existing is not None:
                    return Randomisation(existing, created=False)
                if family.site_id != confirmed_site.pk:
                    raise ValidationError(
                        _("%(study_id)s belongs to %(site)s, not to %(confirmed)s. Check the family and its site.")
                        % {"study_id": family.study_id, "site": family.site.code, "confirmed": confirmed_site.code},
                        code="wrong_site",
                    )
                raise ValidationError(
                    _("Only a family that has consented can be randomised; %(study_id)s is %(status)s.")
                    % {"study_id": family.study_id, "status": family.get_status_display().lower()},
                    code="not_consented",
                )
            family = claimed
            refusals = randomisation_refusals(family)
            if refusals:
                # Rolls the claim back: the family stays consented; the refusal is recorded like the list's.
                raise _Refused("not_ready", " ".join(refusals))
            allocation, length = _allocate(family, randomised_by)
            family_randomised.send(sender=Allocation, family=family, allocation=allocation, randomised_by=randomised_by)
    except _Refused as refused:
        # A monitor must see who was refused and why, although nothing of the randomisation was kept.
        record_event(
            kind=EventKind.RANDOMISATION_REFUSED,
            user=randomised_by,
            site=family.site,
            subject=family.study_id,
            reason=refused.reason,
        )
        if refused.reason == "used_up" and refused.list_id is not None:
            _alert_once(refused.list_id, "exhausted")
        # The reason is the error's code: the API answers with a problem type for it (api/problems.py).
        raise ValidationError(refused.message, code=refused.reason) from None
    if TrialSettings.current().is_low_stock(remaining=length - allocation.position, length=length):
        _alert_once(allocation.entry.allocation_list_id, "low")
    return Randomisation(allocation, created=True)


@cache
def _take_next_position_sql() -> str:
    return _TAKE_NEXT_POSITION.format(list_table=connection.ops.quote_name(AllocationList._meta.db_table))


def _take_next_position(site_id: int) -> tuple[int, int, int] | None:
    """(list id, position taken, length), or None when the site's list has no entry to give."""
    with connection.cursor() as cursor:
        # The list's row lock (taken by this UPDATE until commit) serialises randomisations at the site:
        # two at the same moment would otherwise read the same "next" entry.
        cursor.execute(_take_next_position_sql(), [site_id])
        return cursor.fetchone()


def _allocate(family: Family, randomised_by: User) -> tuple[Allocation, int]:
    """The allocation made from the next entry, and the list's length."""
    row = _take_next_position(family.site_id)
    if row is None:
        # A list being extended right now looked used up to the UPDATE, which skips a row it would have to
        # wait for when that row no longer matches. Waiting for the list's lock lets the extension finish;
        # then a new statement sees the new entries.
        allocation_list = AllocationList.objects.select_for_update().filter(site_id=family.site_id).first()
        if (
            allocation_list is not None
            and allocation_list.is_sealed
            and not allocation_list.is_suspended
            and allocation_list.remaining > 0
        ):
            row = _take_next_position(family.site_id)
    if row is None:
        values = {"site": family.site.code, "study_id": family.study_id}
        if allocation_list is None:
            raise _Refused(
                "no_list", _("%(site)s has no allocation list yet; ask the data manager to generate one.") % values
            )
        if not allocation_list.is_sealed:
            raise _Refused(
                "unsealed",
                _("The allocation list of %(site)s has been unsealed: recruitment there has ended.") % values,
            )
        if allocation_list.is_suspended:
            raise _Refused(
                "stopped",
                _(
                    "The allocation list of %(site)s failed verification and is stopped, so %(study_id)s cannot be "
                    "randomised now. The data managers have been told; randomisation resumes once a data manager "
                    "and the principal investigator have recorded what was found."
                )
                % values,
            )
        raise _Refused(
            "used_up",
            _(
                "The allocation list of %(site)s is used up, so %(study_id)s cannot be randomised now. "
                "The data manager has been told and can extend the list."
            )
            % values,
            list_id=allocation_list.pk,
        )
    list_id, position, length = row
    # A statement of its own: in PostgreSQL it sees the entries of an extension that committed while the
    # UPDATE waited for the list's lock.
    entry = AllocationEntry.objects.filter(allocation_list_id=list_id, position=position).first()
    if entry is None:
        # The entry was deleted behind the database's back (its trigger refuses that): the list is damaged.
        raise _Refused(
            "damaged",
            _(
                "The allocation list of %(site)s is damaged (its next entry is missing), so no family can be "
                "randomised there. Ask the data manager to verify the list."
            )
            % {"site": family.site.code},
        )
    allocation = Allocation(
        family=family,
        entry=entry,
        arm=entry.sealed_arm,
        site_id=family.site_id,
        position=position,
        randomised_by=randomised_by,
    )
    save_as(allocation, randomised_by)
    return allocation, length


def _alert_once(list_id: int, kind: str) -> None:
    """Tell the data managers that a list runs low or is used up, once: a conditional update claims the
    alert, however many randomisations cross the threshold at once, and the messages are written in the same
    transaction as the claim (the outbox), so they exist if and only if the claim does."""
    field = "exhausted_alert_sent_at" if kind == "exhausted" else "low_stock_alert_sent_at"
    with transaction.atomic():
        if not AllocationList.objects.filter(pk=list_id, **{f"{field}__isnull": True}).update(
            **{field: timezone.now()}
        ):
            return
        allocation_list = AllocationList.objects.select_related("site").get(pk=list_id)
        tell_data_managers(
            kind=LIST_USED_UP if kind == "exhausted" else LIST_LOW,
            # The length tells one alert from the next after an extension re-arms it (on the same day too).
            about=f"list:{list_id}@{allocation_list.length}",
            context={
                "site": allocation_list.site.code,
                "remaining": allocation_list.remaining,
                "length": allocation_list.length,
            },
            site=allocation_list.site,
        )


def allocation_annotate(*, allocation: Allocation, reason: str, annotated_by: User) -> AllocationAnnotation:
    """Mark a randomisation as made in error. Nothing is undone: the family stays in its arm."""
    if not can_randomise(annotated_by, allocation.family):
        raise PermissionDenied
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason the randomisation was a mistake.")})
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update().select_related("family").get(pk=allocation.pk)
        if AllocationAnnotation.objects.filter(allocation=allocation).exists():
            raise ValidationError(
                _("The randomisation of %(study_id)s is already marked as made in error.")
                % {"study_id": allocation.family.study_id}
            )
        annotation = AllocationAnnotation(allocation=allocation, reason=reason, annotated_by=annotated_by)
        save_as(annotation, annotated_by)
    return annotation


# --- Emergency unblinding --------------------------------------------------------------------------------


def family_unblind(*, family: Family, user: User, reason: str, unblinded_by: User) -> Unblinding:
    """Reveal one family's arm to one blinded user, for a recorded reason; the data managers are told."""
    if not has_role(unblinded_by, Role.PRINCIPAL_INVESTIGATOR):
        raise PermissionDenied
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for breaking the blind.")})
    if not is_blinded(user) or not can_at_site(user, family.site_id, Role.OUTCOME_ASSESSOR):
        raise ValidationError({"user": _("Choose a blinded outcome assessor of the family's site.")})
    with transaction.atomic():
        family = lock_family(family)
        if not Allocation.objects.filter(family=family).exists():
            raise ValidationError(_("%(study_id)s has not been randomised.") % {"study_id": family.study_id})
        if Unblinding.objects.filter(family=family, user=user).exists():
            raise ValidationError(
                {
                    "user": _("%(user)s already knows the arm of %(study_id)s.")
                    % {"user": user.get_username(), "study_id": family.study_id}
                }
            )
        unblinding = Unblinding(family=family, user=user, reason=reason, unblinded_by=unblinded_by)
        save_as(unblinding, unblinded_by)
        tell_data_managers(
            kind=UNBLINDING,
            about=f"unblinding:{unblinding.pk}",
            context={
                "study_id": family.study_id,
                "user": user.get_username(),
                "by": unblinded_by.get_username(),
            },
            site=family.site,
        )
    return unblinding
