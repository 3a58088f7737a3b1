"""Workflows that move a family through enrolment. Views call these; nothing else writes families.

Each service runs in one transaction that first locks the row whose state it depends on (the site
for a new study number, the family for every later step), re-reads the state under that lock, and only
then checks the rules and writes. A resubmitted form carries the same one-time token and gets the record
the first submission made, so a double click never makes two.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from families.models import (
    Child,
    Consent,
    ConsentDecision,
    Criterion,
    DeclineReason,
    Family,
    FamilyIdentity,
    FamilyStatus,
    Parent,
    ReferralSource,
    Screening,
    StruggleArea,
    Withdrawal,
    WithdrawalReason,
)
from families.signals import family_consented, family_withdrawn
from families.validators import validate_child_birth_date, validate_parent_birth_year
from trial.audit import delete_as, save_as
from trial.models import RecruitmentState, Site, TrialSettings

# Dates before this are typing mistakes (0225 for 2025), not referrals of this trial.
EARLIEST_TRIAL_DATE = date(2000, 1, 1)
MAX_PARENTS = 4
MAX_CHILDREN = 12


@dataclass(frozen=True, repr=False)
class Identifiers:
    contact_name: str
    national_id_number: str = ""
    phone: str = ""
    address: str = ""
    other_members: str = ""

    def __repr__(self) -> str:
        # Never the values: a repr ends up in tracebacks, error reports and logs.
        return "Identifiers(<hidden>)"


def check_date(value: date, *, field: str, not_before: date | None = None, too_early: str = "") -> None:
    """A date of the trial is not in the future, not absurdly old, and not before the step it follows."""
    today = timezone.localdate()
    if value > today:
        raise ValidationError({field: _("The date cannot be in the future.")})
    if value < EARLIEST_TRIAL_DATE:
        raise ValidationError({field: _("The date is too far in the past; check the year.")})
    if not_before is not None and value < not_before:
        raise ValidationError({field: too_early % {"date": date_format(not_before, "SHORT_DATE_FORMAT")}})


def check_all(*checks: Callable[[], object]) -> None:
    """Run every check and raise one ValidationError with everything they found, so that a form shows all its
    mistakes at once instead of one per submit."""
    errors: dict[str, list[ValidationError]] = {}
    for check in checks:
        try:
            check()
        except ValidationError as error:
            error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def check_parents(parent_birth_years: Sequence[int]) -> None:
    """A household's parents: at least one, at most MAX_PARENTS, each born between 1900 and this year."""
    _check_members(
        parent_birth_years,
        field="parents",
        none=_("Add at least one parent."),
        too_many=_("A household can have at most %(n)d parents.") % {"n": MAX_PARENTS},
        most=MAX_PARENTS,
        validate=validate_parent_birth_year,
    )


def check_children(child_birth_dates: Sequence[date]) -> None:
    """A household's children: at least one, at most MAX_CHILDREN, none born in the future."""
    _check_members(
        child_birth_dates,
        field="children",
        none=_("Add at least one child."),
        too_many=_("A household can have at most %(n)d children.") % {"n": MAX_CHILDREN},
        most=MAX_CHILDREN,
        validate=validate_child_birth_date,
    )


def _check_members(
    values: Sequence[Any], *, field: str, none: str, too_many: str, most: int, validate: Callable[[Any], None]
) -> None:
    messages: list[str] = []
    if not values:
        messages.append(none)
    if len(values) > most:
        messages.append(too_many)
    for value in values:
        try:
            validate(value)
        except ValidationError as error:
            messages += [message for message in error.messages if message not in messages]
    if messages:
        raise ValidationError({field: messages})


def _check_household(*, parent_birth_years: list[int], child_birth_dates: list[date]) -> None:
    check_all(lambda: check_parents(parent_birth_years), lambda: check_children(child_birth_dates))


@sensitive_variables("identifiers")
def _check_identifiers(identifiers: Identifiers) -> None:
    if not identifiers.contact_name.strip():
        raise ValidationError({"contact_name": _("Enter the name of the parent to contact.")})


def _check_referral_source(referral_source: str) -> None:
    if referral_source not in ReferralSource.values:
        raise ValidationError({"referral_source": _("Choose who referred the family.")})


@sensitive_variables("identifiers")
def family_register(
    *,
    site: Site,
    referral_date: date,
    referral_source: str,
    parent_birth_years: list[int],
    child_birth_dates: list[date],
    identifiers: Identifiers,
    registered_by: User,
    token: uuid.UUID,
) -> Family:
    check_all(
        lambda: check_date(referral_date, field="referral_date"),
        lambda: _check_referral_source(referral_source),
        lambda: _check_household(parent_birth_years=parent_birth_years, child_birth_dates=child_birth_dates),
        lambda: _check_identifiers(identifiers),
    )

    # Everything is checked before the site is locked: the lock is the one place where registrations
    # at a site queue, so it is held only for the writes.
    with transaction.atomic():
        # Locking the site serialises registrations at that site: two researchers registering at
        # the same moment would otherwise both read the same last number and collide (or skip one).
        locked_site = Site.objects.select_for_update().get(pk=site.pk)
        existing = Family.objects.filter(registration_token=token).first()
        if existing is not None:
            return existing
        # Read under the lock that trial.services.site_set_recruitment_state takes too: a family registered while
        # the site is being paused is either in before the pause or refused.
        if locked_site.recruitment_state != RecruitmentState.OPEN:
            message = _("%(site)s is not recruiting (%(state)s): no family can be registered there now.") % {
                "site": locked_site.name,
                "state": RecruitmentState(locked_site.recruitment_state).label.lower(),
            }
            # The code lets the API answer with a conflict, not bad input (api/problems.py).
            raise ValidationError({"site": ValidationError(message, code="not_recruiting")})
        number = locked_site.last_family_number + 1
        Site.objects.filter(pk=site.pk).update(last_family_number=F("last_family_number") + 1)
        family = Family(
            site=locked_site,
            number=number,
            study_id=Family.format_study_id(locked_site.code, number),
            referral_date=referral_date,
            referral_source=referral_source,
            registered_by=registered_by,
            registration_token=token,
        )
        save_as(family, registered_by)
        for year in parent_birth_years:
            save_as(Parent(family=family, birth_year=year), registered_by)
        for born in child_birth_dates:
            save_as(Child(family=family, birth_date=born), registered_by)
        save_as(
            FamilyIdentity(
                family=family,
                contact_name=identifiers.contact_name.strip(),
                national_id_number=identifiers.national_id_number.strip(),
                phone=identifiers.phone.strip(),
                address=identifiers.address.strip(),
                other_members=identifiers.other_members.strip(),
            ),
            registered_by,
        )
    return family


@sensitive_variables("identifiers")
def family_update_identifiers(*, family: Family, identifiers: Identifiers, changed_by: User) -> FamilyIdentity:
    """Correct a family's direct identifiers; the audit trail keeps the (encrypted) earlier values."""
    _check_identifiers(identifiers)
    with transaction.atomic():
        family = lock_family(family)
        identity = family.identity
        changed = False
        for name, value in vars(identifiers).items():
            if getattr(identity, name) != value.strip():
                setattr(identity, name, value.strip())
                changed = True
        if changed:
            save_as(identity, changed_by)
    return identity


# A household may be corrected until the family answers the invitation; from then on it is the
# household the family consented (or declined) with.
HOUSEHOLD_CORRECTABLE = (FamilyStatus.REFERRED, FamilyStatus.ELIGIBLE, FamilyStatus.INELIGIBLE)


def family_correct_household(
    *,
    family: Family,
    parent_birth_years: list[int],
    child_birth_dates: list[date],
    reason: str,
    corrected_by: User,
) -> bool:
    """Correct the household as registered; returns whether anything changed.

    Rows are changed in place, added, or removed (a removed row stays in the audit trail, with the
    reason). A screened family whose household changed must be screened again: its status goes back
    to referred, since the earlier screening judged another household."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for the correction.")})
    _check_household(parent_birth_years=parent_birth_years, child_birth_dates=child_birth_dates)
    with transaction.atomic():
        family = lock_family(family)
        if family.status not in HOUSEHOLD_CORRECTABLE:
            raise ValidationError(
                _("The household of %(study_id)s can no longer be corrected: the family is %(status)s.")
                % {"study_id": family.study_id, "status": family.get_status_display().lower()}
            )
        changed = _correct_rows(
            list(family.parents.order_by("pk")),
            parent_birth_years,
            "birth_year",
            lambda year: Parent(family=family, birth_year=year),
            reason,
            corrected_by,
        )
        changed |= _correct_rows(
            list(family.children.order_by("pk")),
            child_birth_dates,
            "birth_date",
            lambda born: Child(family=family, birth_date=born),
            reason,
            corrected_by,
        )
        if changed and family.status != FamilyStatus.REFERRED:
            family.status = FamilyStatus.REFERRED
            save_as(family, corrected_by, reason)
    return changed


def _correct_rows(
    rows: Sequence[models.Model],
    values: Sequence[Any],
    field: str,
    make: Callable[[Any], models.Model],
    reason: str,
    user: User,
) -> bool:
    """Make the household rows hold `values`, in order; each change carries the reason into the audit trail."""
    changed = False
    for row, value in zip(rows, values):
        if getattr(row, field) != value:
            setattr(row, field, value)
            save_as(row, user, reason)
            changed = True
    for value in values[len(rows) :]:
        save_as(make(value), user, reason)
        changed = True
    for row in rows[len(values) :]:
        delete_as(row, user, reason)
        changed = True
    return changed


# The records a form with a one-time token makes after the family exists.
_Submitted = TypeVar("_Submitted", Screening, Consent, Withdrawal)


def _already_submitted(model: type[_Submitted], *, family: Family, token: uuid.UUID) -> _Submitted | None:
    """The record this form's token made before (a double click, a reload), or None.

    A token seen on another family's record is a tampered or mixed-up form: refuse it rather than
    return that family's record."""
    existing = model.objects.filter(submission_token=token).first()
    if existing is not None and existing.family_id != family.pk:
        raise ValidationError(_("The form has expired; reload the page."))
    return existing


def lock_family(family: Family) -> Family:
    """The family's row, locked until the transaction ends: every step of its life cycle takes this first.

    Only the family's row (`of=("self",)`): a plain FOR UPDATE would lock the joined site row too, and every
    step at a site would then queue behind registrations and randomisations there."""
    return Family.objects.select_for_update(of=("self",)).select_related("site").get(pk=family.pk)


def screening_assess(
    *,
    parent_birth_years: list[int],
    child_birth_dates: list[date],
    screened_on: date,
    involved_with_child_welfare: bool,
    harmful_circumstances: bool,
    struggle_areas: Sequence[str],
    trial_settings: TrialSettings,
) -> list[str]:
    """The registry's criteria, as configured; returns the codes of the criteria that failed."""
    failed = []
    # Only the birth year of a parent is kept (data minimisation): a parent counts as reaching an
    # age in the calendar year of that birthday. See docs/decisions.md.
    if not any(screened_on.year - year >= trial_settings.min_parent_age for year in parent_birth_years):
        failed.append(Criterion.PARENT_AGE)
    if not any(
        born <= screened_on and _age_on(born, screened_on) < trial_settings.max_child_age for born in child_birth_dates
    ):
        failed.append(Criterion.CHILD_AGE)
    if not involved_with_child_welfare:
        failed.append(Criterion.CHILD_WELFARE)
    if not harmful_circumstances:
        failed.append(Criterion.HARMFUL_CIRCUMSTANCES)
    if len(set(struggle_areas)) < trial_settings.min_struggle_areas:
        failed.append(Criterion.STRUGGLE_AREAS)
    return [str(code) for code in failed]


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def family_screen(
    *,
    family: Family,
    screened_on: date,
    involved_with_child_welfare: bool,
    harmful_circumstances: bool,
    struggle_areas: Sequence[str],
    rescreening_reason: str = "",
    screened_by: User,
    token: uuid.UUID,
) -> Screening:
    unknown = set(struggle_areas) - set(StruggleArea.values)
    if unknown:
        raise ValidationError({"struggle_areas": _("Choose areas from the list.")})
    with transaction.atomic():
        family = lock_family(family)
        existing = _already_submitted(Screening, family=family, token=token)
        if existing is not None:
            return existing
        if family.status not in (FamilyStatus.REFERRED, FamilyStatus.ELIGIBLE, FamilyStatus.INELIGIBLE):
            raise ValidationError(
                _("%(study_id)s can no longer be screened: the family is %(status)s.")
                % {"study_id": family.study_id, "status": family.get_status_display().lower()}
            )
        previous = _latest_screening(family)
        # A first screening has no reason to give: the form does not ask for one, and the API ignores one sent.
        rescreening_reason = rescreening_reason.strip() if previous is not None else ""
        if previous is not None and not rescreening_reason:
            raise ValidationError(
                {"rescreening_reason": _("This family has been screened before: give the reason for screening again.")}
            )
        check_date(
            screened_on,
            field="screened_on",
            not_before=family.referral_date,
            too_early=_("The screening date cannot be before the referral date (%(date)s)."),
        )
        if previous is not None:
            check_date(
                screened_on,
                field="screened_on",
                not_before=previous.screened_on,
                too_early=_("A new screening cannot be dated before the previous one (%(date)s)."),
            )
        trial_settings = TrialSettings.current()
        failed = screening_assess(
            parent_birth_years=list(family.parents.values_list("birth_year", flat=True)),
            child_birth_dates=list(family.children.values_list("birth_date", flat=True)),
            screened_on=screened_on,
            involved_with_child_welfare=involved_with_child_welfare,
            harmful_circumstances=harmful_circumstances,
            struggle_areas=struggle_areas,
            trial_settings=trial_settings,
        )
        screening = Screening(
            family=family,
            screened_on=screened_on,
            screened_by=screened_by,
            involved_with_child_welfare=involved_with_child_welfare,
            harmful_circumstances=harmful_circumstances,
            struggle_areas=sorted(set(struggle_areas)),
            eligible=not failed,
            failed_criteria=failed,
            thresholds={
                "min_parent_age": trial_settings.min_parent_age,
                "max_child_age": trial_settings.max_child_age,
                "min_struggle_areas": trial_settings.min_struggle_areas,
            },
            rescreening_reason=rescreening_reason,
            submission_token=token,
        )
        save_as(screening, screened_by)
        family.status = FamilyStatus.ELIGIBLE if screening.eligible else FamilyStatus.INELIGIBLE
        save_as(family, screened_by)
    return screening


def _latest_screening(family: Family) -> Screening | None:
    return family.screenings.order_by("-recorded_at", "-pk").first()


def _check_can_decide(family: Family) -> Screening:
    """The screening a decision follows: a family answers once screened eligible, and again after a decline."""
    if family.status not in (FamilyStatus.ELIGIBLE, FamilyStatus.DECLINED):
        if family.status in (*WITHDRAWABLE, FamilyStatus.WITHDRAWN):
            message = _("%(study_id)s has already consented; a change of mind now is a withdrawal.")
        elif family.status == FamilyStatus.INELIGIBLE:
            message = _("%(study_id)s was screened not eligible and cannot be asked for consent.")
        else:
            message = _("%(study_id)s must be screened eligible before consent is recorded.")
        raise ValidationError(message % {"study_id": family.study_id})
    screening = _latest_screening(family)
    assert screening is not None, "an eligible or declined family has been screened"
    return screening


def family_record_consent(
    *,
    family: Family,
    decided_on: date,
    form_version: str,
    obtained_by: User | None,
    replaces: Consent | None = None,
    new_decision_reason: str = "",
    recorded_by: User,
    token: uuid.UUID,
) -> Consent:
    """The family consents: its first answer, or a new one after a decline (`replaces` the decision the
    researcher saw, with the reason for the new decision)."""
    form_version = form_version.strip()
    if not form_version:
        raise ValidationError({"form_version": _("Enter the version of the consent form the family signed.")})
    if obtained_by is None:
        raise ValidationError({"obtained_by": _("Choose who obtained the consent.")})
    return _record_decision(
        family=family,
        decided_on=decided_on,
        replaces=replaces,
        new_decision_reason=new_decision_reason,
        recorded_by=recorded_by,
        token=token,
        decision=ConsentDecision.CONSENTED,
        form_version=form_version,
        obtained_by=obtained_by,
    )


def family_record_decline(
    *,
    family: Family,
    decided_on: date,
    reason: str,
    details: str = "",
    replaces: Consent | None = None,
    new_decision_reason: str = "",
    recorded_by: User,
    token: uuid.UUID,
) -> Consent:
    """The family declines: its first answer, or again after a decline (see family_record_consent)."""
    if reason not in DeclineReason.values:
        raise ValidationError({"decline_reason": _("Choose the reason the family declined.")})
    return _record_decision(
        family=family,
        decided_on=decided_on,
        replaces=replaces,
        new_decision_reason=new_decision_reason,
        recorded_by=recorded_by,
        token=token,
        decision=ConsentDecision.DECLINED,
        decline_reason=reason,
        decline_details=details.strip(),
    )


def _record_decision(
    *,
    family: Family,
    decided_on: date,
    replaces: Consent | None,
    new_decision_reason: str,
    recorded_by: User,
    token: uuid.UUID,
    decision: str,
    **fields: Any,
) -> Consent:
    """A decision of the family after an eligible screening: the first, or a new one after a decline.

    Under the family's lock, the decision the form was made for must still be the latest: of two researchers
    answering for the family at the same moment, the second is told that a decision was recorded meanwhile
    (the database also refuses two decisions replacing the same one, and a second consent)."""
    new_decision_reason = new_decision_reason.strip()
    with transaction.atomic():
        family = lock_family(family)
        existing = _already_submitted(Consent, family=family, token=token)
        if existing is not None:
            return existing
        screening = _check_can_decide(family)
        latest = family.consent
        if (latest.pk if latest else None) != (replaces.pk if replaces else None):
            raise ValidationError(
                _("Another decision of %(study_id)s was recorded meanwhile; reload the page to see it.")
                % {"study_id": family.study_id}
            )
        if latest is not None and not new_decision_reason:
            raise ValidationError(
                {"new_decision_reason": _("The family has answered before: give the reason for the new decision.")}
            )
        check_date(
            decided_on,
            field="decided_on",
            not_before=screening.screened_on,
            too_early=_("The decision cannot be dated before the screening (%(date)s)."),
        )
        if latest is not None:
            check_date(
                decided_on,
                field="decided_on",
                not_before=latest.decided_on,
                too_early=_("A new decision cannot be dated before the previous decision (%(date)s)."),
            )
        answer = Consent(
            family=family,
            decision=decision,
            decided_on=decided_on,
            replaces=latest,
            new_decision_reason=new_decision_reason if latest is not None else "",
            recorded_by=recorded_by,
            submission_token=token,
            **fields,
        )
        save_as(answer, recorded_by)
        status = FamilyStatus.CONSENTED if decision == ConsentDecision.CONSENTED else FamilyStatus.DECLINED
        if family.status != status:
            family.status = status
            save_as(family, recorded_by)
        if decision == ConsentDecision.CONSENTED:
            family_consented.send(sender=Consent, family=family, consent=answer, recorded_by=recorded_by)
    return answer


# A family can withdraw once it has consented, before or after randomisation; a randomised family keeps
# its allocation (intention to treat).
WITHDRAWABLE = (FamilyStatus.CONSENTED, FamilyStatus.RANDOMISED)


def family_withdraw(
    *,
    family: Family,
    withdrawn_on: date,
    reason: str,
    details: str = "",
    data_may_be_kept: bool,
    recorded_by: User,
    token: uuid.UUID,
) -> Withdrawal:
    if reason not in WithdrawalReason.values:
        raise ValidationError({"reason": _("Choose the reason for the withdrawal.")})
    with transaction.atomic():
        family = lock_family(family)
        existing = _already_submitted(Withdrawal, family=family, token=token)
        if existing is not None:
            return existing
        if family.status not in WITHDRAWABLE:
            raise ValidationError(
                _("Only a family that has consented can withdraw; %(study_id)s is %(status)s.")
                % {"study_id": family.study_id, "status": family.get_status_display().lower()}
            )
        check_date(
            withdrawn_on,
            field="withdrawn_on",
            not_before=_consent_of(family).decided_on,
            too_early=_("The withdrawal cannot be dated before the consent (%(date)s)."),
        )
        withdrawal = Withdrawal(
            family=family,
            withdrawn_on=withdrawn_on,
            reason=reason,
            details=details.strip(),
            data_may_be_kept=data_may_be_kept,
            recorded_by=recorded_by,
            submission_token=token,
        )
        save_as(withdrawal, recorded_by)
        family.status = FamilyStatus.WITHDRAWN
        save_as(family, recorded_by)
        # In the same transaction and under the family's lock: apps above this one end what the family
        # had going (the Family Partner's intervention).
        family_withdrawn.send(sender=Withdrawal, family=family, withdrawal=withdrawal, recorded_by=recorded_by)
    return withdrawal


def _consent_of(family: Family) -> Consent:
    """A family's consent (its one consented decision)."""
    return family.consents.get(decision=ConsentDecision.CONSENTED)


def family_claim_for_randomisation(*, family: Family, site: Site, randomised_by: User) -> Family | None:
    """The family's step into the trial proper, for the randomisation service's transaction: a consented
    family of `site` becomes "randomised", and its row stays locked until that transaction ends.

    Returns None, changing nothing, when the family is not (or no longer) a consented family of `site`: the
    caller then finds out why under lock_family. Two requests at once: the second waits for the first one's
    commit and gets None."""
    # A conditional UPDATE claims the family, as healthchecks claims work: it takes the row's lock, and its
    # row count says who got there first (the second of two requests waits for the first one's commit, then
    # matches nothing). The same statement on PostgreSQL and SQLite.
    claimed = Family.objects.filter(pk=family.pk, status=FamilyStatus.CONSENTED, site=site).update(
        status=FamilyStatus.RANDOMISED
    )
    if not claimed:
        return None
    # Read back under the lock, so that the audit row copies the family as it is, not as the page saw it.
    family = Family.objects.select_related("site").get(pk=family.pk)
    save_as(family, randomised_by, update_fields=["status"])
    return family
