"""The Family Partner's work: assigning families to partners, ending interventions, logging contacts.

Every service runs in one transaction that first locks the family's row (families.services.lock_family),
then any Family Partner's row it depends on, always in that order and partners by primary key, so that
two services never wait for each other. The database stands behind the rules the services check: a
partner's active families never exceed their capacity, one partner per family at a time, at most 24 hours
of contacts per family and day (visits.models and its triggers). A constraint that fires anyway (two
requests at the same moment) becomes the same message as the service's own check.
"""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from families.models import Family, FamilyStatus, Withdrawal
from families.services import check_date, lock_family
from randomization.models import Allocation
from randomization.selectors import is_intervention_family
from trial.audit import save_as
from trial.models import TrialSettings
from trial.roles import Role, has_role
from visits import weeks
from visits.models import (
    CAPACITY_CONSTRAINT,
    MAX_CONTACT_QUARTERS,
    MAX_DAY_QUARTERS,
    ONE_ACTIVE_ASSIGNMENT_CONSTRAINT,
    REFUSED_NOT_INTERVENTION,
    REFUSED_NOT_RANDOMISED,
    Assignment,
    Contact,
    ContactDay,
    ContactKind,
    Element,
    EndReason,
    InterventionPeriod,
    PartnerProfile,
    PartnerStatus,
)
from visits.selectors import can_manage_caseload, contact_rights, is_partner_of, randomised_in_error


def day_text(value: date) -> str:
    return date_format(value, "SHORT_DATE_FORMAT")


def randomised_on(family: Family) -> date | None:
    randomised_at = Allocation.objects.filter(family=family).values_list("randomised_at", flat=True).first()
    return timezone.localdate(randomised_at) if randomised_at else None


# --- Caseload ----------------------------------------------------------------------------------------------


@dataclass
class AssignmentResult:
    assignment: Assignment
    created: bool


def _full_message(partner: PartnerProfile) -> str:
    return _(
        "%(partner)s has no free slot: %(count)s of %(capacity)s families already. Choose another Family Partner."
    ) % {
        "partner": partner,
        "count": partner.active_families,
        "capacity": partner.capacity,
    }


# `shown` of family_assign when the caller does not say which assignment its user saw.
NOT_SHOWN = -1
CONFIRM_IN_ERROR = gettext_lazy(
    "Tick the box to confirm that this family gets a Family Partner although it was randomised in error."
)


def family_assign(
    *,
    family: Family,
    partner: PartnerProfile,
    started_on: date,
    assigned_by: User,
    reason: str = "",
    shown: int | None = NOT_SHOWN,
    confirmed_in_error: bool = False,
) -> AssignmentResult:
    """Give an intervention family its Family Partner, or a new one (`reason` then says why the last one ended).

    The first assignment starts the family's intervention period. Asking again for the partner the family
    already has (a double click, a colleague) returns that assignment. `shown` is the assignment the user's
    form was made for (None: the family had no partner then); if a colleague changed it meanwhile, the form is
    refused instead of ending the colleague's new assignment. A family whose randomisation is marked
    "randomised in error" gets a partner only when the researcher confirms it (`confirmed_in_error`)."""
    if not can_manage_caseload(assigned_by, family.site_id):
        raise PermissionDenied
    reason = reason.strip()
    with transaction.atomic():
        family = lock_family(family)
        current = Assignment.objects.filter(family=family, ended_on__isnull=True).first()
        if current is not None and current.partner_id == partner.pk:
            return AssignmentResult(current, created=False)
        if shown != NOT_SHOWN and shown != (current.pk if current else None):
            raise ValidationError(_changed_meanwhile_message(family))
        # The partners' rows, locked in key order: the new one, and the one a reassignment frees.
        locked = {
            profile.pk: profile
            for profile in PartnerProfile.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk__in={partner.pk} | ({current.partner_id} if current else set()))
            .order_by("pk")
        }
        partner = locked[partner.pk]
        check_assignable(family)
        if not confirmed_in_error and randomised_in_error(family) is not None:
            raise ValidationError({"confirm_in_error": str(CONFIRM_IN_ERROR)})
        if partner.site_id != family.site_id:
            raise ValidationError({"partner": _("Choose a Family Partner of the family's own site.")})
        if not partner.user.is_active or not has_role(partner.user, Role.FAMILY_PARTNER):
            raise ValidationError(
                {
                    "partner": _("%(partner)s has no active Family Partner account; ask the administrator.")
                    % {"partner": partner}
                }
            )
        if partner.status != PartnerStatus.ACTIVE:
            raise ValidationError(
                {"partner": _("%(partner)s is on leave and takes no families now.") % {"partner": partner}}
            )
        if partner.active_families >= partner.capacity:
            raise ValidationError({"partner": _full_message(partner)})
        check_date(
            started_on,
            field="started_on",
            not_before=randomised_on(family),
            too_early=_("The assignment cannot start before the family joined the study (%(date)s)."),
        )
        if current is not None:
            if not reason:
                raise ValidationError(
                    {
                        "reason": _("%(study_id)s already has a Family Partner (%(partner)s). Say why they change.")
                        % {"study_id": family.study_id, "partner": locked[current.partner_id]}
                    }
                )
            check_date(
                started_on,
                field="started_on",
                not_before=current.started_on,
                too_early=_("The new assignment cannot start before the current one (%(date)s)."),
            )
            current.ended_on = started_on
            current.end_reason = reason
            save_as(current, assigned_by, reason)
        assignment = Assignment(family=family, partner=partner, started_on=started_on, assigned_by=assigned_by)
        try:
            with transaction.atomic():
                save_as(assignment, assigned_by)
        except IntegrityError as error:
            # Only reachable if the checks above were bypassed: the database's refusal in their words.
            raise _refused_by_database(error, family, partner) from None
        if not InterventionPeriod.objects.filter(family=family).exists():
            expected = TrialSettings.current().intervention_expected_months
            period = InterventionPeriod(
                family=family, started_on=started_on, planned_end_on=weeks.add_months(started_on, expected)
            )
            save_as(period, assigned_by)
    return AssignmentResult(assignment, created=True)


def _not_started_message(family: Family) -> str:
    return _("The intervention of %(study_id)s has not started: it starts with the first Family Partner.") % {
        "study_id": family.study_id
    }


def _changed_meanwhile_message(family: Family) -> str:
    return _("The Family Partner of %(study_id)s changed while you were choosing; check the family and try again.") % {
        "study_id": family.study_id
    }


def _not_randomised_message(family: Family) -> str:
    return _("Only a randomised family gets a Family Partner; %(study_id)s is %(status)s.") % {
        "study_id": family.study_id,
        "status": family.get_status_display().lower(),
    }


def _not_intervention_message(family: Family) -> str:
    return _("%(study_id)s is not in the intervention arm and gets no Family Partner.") % {"study_id": family.study_id}


def _refused_by_database(error: IntegrityError, family: Family, partner: PartnerProfile) -> ValidationError:
    """Which of the database's rules refused an assignment, told as the service's own check tells it."""
    text = str(error)
    if REFUSED_NOT_INTERVENTION in text:
        return ValidationError(_not_intervention_message(family))
    if REFUSED_NOT_RANDOMISED in text:
        family.refresh_from_db(fields=["status"])
        return ValidationError(_not_randomised_message(family))
    if ONE_ACTIVE_ASSIGNMENT_CONSTRAINT in text:
        return ValidationError(_changed_meanwhile_message(family))
    if CAPACITY_CONSTRAINT in text:
        partner.refresh_from_db()
        return ValidationError({"partner": _full_message(partner)})
    raise error


def check_assignable(family: Family) -> None:
    """Whether the family can get a Family Partner at all (its page says so before offering the form)."""
    if family.status != FamilyStatus.RANDOMISED:
        raise ValidationError(_not_randomised_message(family))
    if not is_intervention_family(family):
        raise ValidationError(_not_intervention_message(family))
    ended = _ended_on(family)
    if ended is not None:
        raise ValidationError(
            _("The intervention of %(study_id)s ended on %(date)s.")
            % {"study_id": family.study_id, "date": day_text(ended)}
        )


def _last_contact_on(family: Family) -> date | None:
    """The family's last contact that counts (a voided one does not)."""
    return Contact.objects.filter(family=family, voided_at__isnull=True).aggregate(last=Max("contact_date"))["last"]


def _ended_on(family: Family) -> date | None:
    """When the family's intervention ended; None while it runs or before it starts."""
    return (
        InterventionPeriod.objects.filter(family=family, ended_on__isnull=False)
        .values_list("ended_on", flat=True)
        .first()
    )


def partner_set_status(*, partner: PartnerProfile, status: str, changed_by: User) -> PartnerProfile:
    """A Family Partner goes on leave (takes no new families; their families stay theirs) or comes back."""
    if not can_manage_caseload(changed_by, partner.site_id):
        raise PermissionDenied
    if status not in PartnerStatus.values:
        raise ValidationError({"status": _("Choose active or on leave.")})
    with transaction.atomic():
        partner = PartnerProfile.objects.select_for_update(of=("self",)).select_related("user").get(pk=partner.pk)
        if partner.status != status:
            partner.status = status
            save_as(partner, changed_by)
    return partner


def partner_capacity_check(*, capacity: int, partner_pk: int | None) -> None:
    """A capacity a Family Partner can have: from one family to the trial's limit, and, for a partner set up
    already, no fewer than the families they have now, as the database counts them (not as a form read them).

    Inside a transaction the partner's row stays locked until it ends, so an assignment at the same moment waits
    and then finds the new capacity, instead of the save failing the database's check (the admin's form checks
    here, inside the transaction in which it saves)."""
    limit = TrialSettings.current().partner_capacity
    if capacity < 1:
        raise ValidationError({"capacity": _("A Family Partner takes at least one family.")})
    if capacity > limit:
        raise ValidationError(
            {"capacity": _("At most %(limit)s families per Family Partner (the trial settings).") % {"limit": limit}}
        )
    if partner_pk is None:
        return
    rows = PartnerProfile.objects.filter(pk=partner_pk)
    if connection.in_atomic_block:
        rows = rows.select_for_update(of=("self",))
    active = rows.values_list("active_families", flat=True).first() or 0
    if capacity < active:
        raise ValidationError(
            {"capacity": _("This Family Partner has %(count)s families now; reassign some first.") % {"count": active}}
        )


def partner_profile_save(*, profile: PartnerProfile, saved_by: User) -> PartnerProfile:
    """The administrator sets a Family Partner up, or changes their site, capacity or status (docs/trial-rules.md,
    "The Family Partner's work": at most 5 families at a time, a setting). Allowed to whoever the admin allows to
    add or change a profile (its model permissions: the superuser that `createsuperuser` makes, docs/deployment.md)."""
    if not saved_by.has_perm("visits.change_partnerprofile" if profile.pk else "visits.add_partnerprofile"):
        raise PermissionDenied
    with transaction.atomic():
        partner_capacity_check(capacity=profile.capacity, partner_pk=profile.pk)
        save_as(profile, saved_by)
    return profile


# --- The intervention's end ----------------------------------------------------------------------------------


def intervention_bounds(period: InterventionPeriod, trial_settings: TrialSettings) -> tuple[date, date]:
    """The earliest and latest end of an intervention that ends as planned (the trial's minimum and maximum)."""
    return (
        weeks.add_months(period.started_on, trial_settings.intervention_min_months),
        weeks.add_months(period.started_on, trial_settings.intervention_max_months),
    )


def intervention_end(
    *, family: Family, ended_on: date, reason: str, details: str = "", ended_by: User
) -> InterventionPeriod:
    """End a family's intervention, and with it the Family Partner's assignment (the slot becomes free).

    "Completed as planned" only fits an end between the trial's minimum and maximum length; an end
    outside them needs the reason it ended early or late."""
    if not can_manage_caseload(ended_by, family.site_id):
        raise PermissionDenied
    details = details.strip()
    if reason not in EndReason.values:
        raise ValidationError({"reason": _("Choose why the intervention ended.")})
    if reason == EndReason.OTHER and not details:
        raise ValidationError({"details": _("Describe why the intervention ended.")})
    with transaction.atomic():
        family = lock_family(family)
        period = InterventionPeriod.objects.select_for_update(of=("self",)).filter(family=family).first()
        if period is None:
            raise ValidationError(_not_started_message(family))
        if period.ended_on is not None:
            raise ValidationError(
                _("The intervention of %(study_id)s already ended on %(date)s.")
                % {"study_id": family.study_id, "date": day_text(period.ended_on)}
            )
        current = Assignment.objects.filter(family=family, ended_on__isnull=True).first()
        check_date(
            ended_on,
            field="ended_on",
            not_before=max(period.started_on, current.started_on if current else period.started_on),
            too_early=_("The end cannot be before %(date)s."),
        )
        last_contact = _last_contact_on(family)
        if last_contact is not None and ended_on < last_contact:
            raise ValidationError(
                {"ended_on": _("A contact is logged on %(date)s, after this end.") % {"date": day_text(last_contact)}}
            )
        trial_settings = TrialSettings.current()
        earliest, latest = intervention_bounds(period, trial_settings)
        if reason == EndReason.COMPLETED and not earliest <= ended_on <= latest:
            raise ValidationError(
                {
                    "reason": _(
                        "An intervention shorter than %(min)s or longer than %(max)s months did not end as planned: "
                        "choose the reason it ended %(when)s."
                    )
                    % {
                        "min": trial_settings.intervention_min_months,
                        "max": trial_settings.intervention_max_months,
                        "when": _("early") if ended_on < earliest else _("late"),
                    }
                }
            )
        _end(period, current, ended_on=ended_on, reason=reason, details=details, by=ended_by)
    return period


def _end(
    period: InterventionPeriod, current: Assignment | None, *, ended_on: date, reason: str, details: str, by: User
) -> None:
    label = str(EndReason(reason).label)
    if current is not None:
        current.ended_on = ended_on
        current.end_reason = label
        save_as(current, by, label)
    period.ended_on = ended_on
    period.end_reason = reason
    period.end_details = details
    period.ended_by = by
    save_as(period, by, details or label)


def end_intervention_on_withdrawal(
    sender, *, family: Family, withdrawal: Withdrawal, recorded_by: User, **kwargs
) -> None:
    """A withdrawn family's intervention ends on the withdrawal date (families.signals.family_withdrawn,
    sent inside the withdrawal's transaction with the family locked)."""
    period = (
        InterventionPeriod.objects.select_for_update(of=("self",)).filter(family=family, ended_on__isnull=True).first()
    )
    if period is None:
        return
    current = Assignment.objects.filter(family=family, ended_on__isnull=True).first()
    # The intervention ran at least until its last logged contact (a partner may not have known yet).
    ended_on = max(
        withdrawal.withdrawn_on,
        period.started_on,
        current.started_on if current else period.started_on,
        _last_contact_on(family) or period.started_on,
    )
    _end(period, current, ended_on=ended_on, reason=EndReason.WITHDRAWN, details="", by=recorded_by)


# --- The contact log ---------------------------------------------------------------------------------------


@dataclass
class ContactInput:
    contact_date: date
    duration_quarters: int
    kind: str
    elements: list[str]
    notes: str = ""


# What a Family Partner enters (the contact form's fields).
CONTACT_FIELDS = ("contact_date", "duration_quarters", "kind", "elements", "notes")


def _check_contact(family: Family, data: ContactInput, *, replacing: Contact | None = None) -> None:
    """The contact's own rules, then the family's: dated within its intervention, at most 24 hours a day."""
    if data.kind not in ContactKind.values:
        raise ValidationError({"kind": _("Choose the kind of contact.")})
    if not data.elements:
        raise ValidationError({"elements": _("Tick at least one element of the model that the contact served.")})
    if not set(data.elements) <= set(Element.values):
        raise ValidationError({"elements": _("Choose among the model's five elements.")})
    if not 1 <= data.duration_quarters <= MAX_CONTACT_QUARTERS:
        raise ValidationError({"duration_quarters": _("A contact lasts from a quarter of an hour to 12 hours.")})
    # The intervention runs from the family's first Family Partner (the first assignment) to its end.
    period = InterventionPeriod.objects.filter(family=family).values_list("started_on", "ended_on").first()
    if period is None:  # no partner yet, so nobody may log (is_partner_of): said all the same
        raise ValidationError(_not_started_message(family))
    started, ended = period
    check_date(
        data.contact_date,
        field="contact_date",
        not_before=started,
        too_early=_("The date cannot be before the family got its Family Partner (%(date)s)."),
    )
    if ended is not None and data.contact_date > ended:
        raise ValidationError(
            {
                "contact_date": _("The date cannot be after the intervention ended (%(date)s).")
                % {"date": day_text(ended)}
            }
        )
    logged = _logged_quarters(family.pk, data.contact_date)
    if replacing is not None and replacing.contact_date == data.contact_date:
        logged -= replacing.duration_quarters
    if logged + data.duration_quarters > MAX_DAY_QUARTERS:
        raise ValidationError({"duration_quarters": _day_cap_message(data.contact_date, logged)})


def _normalised(data: ContactInput) -> ContactInput:
    """The input as it is stored: notes without surrounding blanks, known elements once each in the model's order
    (the same elements in another order are the same contact; unknown ones are left for the checks to refuse)."""
    data.notes = data.notes.strip()
    if set(data.elements) <= set(Element.values):
        data.elements = [element for element in Element.values if element in data.elements]
    return data


def _logged_quarters(family_id: int, day: date) -> int:
    """The family's contact time on `day` so far (the database's daily total)."""
    return ContactDay.objects.filter(family_id=family_id, day=day).values_list("quarters", flat=True).first() or 0


def _day_cap_message(day: date, logged_quarters: int) -> str:
    return _("%(hours)s hours are already logged for this family on %(date)s; a day has at most 24 hours.") % {
        "hours": weeks.format_hours(logged_quarters),
        "date": day_text(day),
    }


def _save_contact(contact: Contact, user: User, reason: str = "") -> None:
    """Save in a savepoint: the 24-hour constraint (two contacts at the same moment) becomes the form's message."""
    try:
        with transaction.atomic():
            save_as(contact, user, reason)
    except IntegrityError:
        logged = _logged_quarters(contact.family_id, contact.contact_date)
        raise ValidationError({"duration_quarters": _day_cap_message(contact.contact_date, logged)}) from None


@sensitive_variables("data")
def contact_log(*, family: Family, author: User, data: ContactInput, token: uuid.UUID) -> Contact:
    """A Family Partner logs a contact with one of their own families. A resubmitted form logs it once."""
    with transaction.atomic():
        family = lock_family(family)
        if not is_partner_of(author, family):
            raise PermissionDenied
        existing = Contact.objects.filter(submission_token=token).first()
        if existing is not None:
            if existing.family_id != family.pk or existing.author_id != author.pk:
                raise ValidationError(_("The form has expired; reload the page."))
            return existing
        data = _normalised(data)
        _check_contact(family, data)
        contact = Contact(
            family=family,
            author=author,
            submission_token=token,
            **{name: getattr(data, name) for name in CONTACT_FIELDS},
        )
        _save_contact(contact, author)
    return contact


def correction_needs_reason(contact: Contact, now=None) -> bool:
    """The author corrects a contact freely for the first days after logging it (trial settings); later
    corrections need a reason."""
    days = TrialSettings.current().contact_correction_days
    return (now or timezone.now()) - contact.recorded_at > timedelta(days=days)


@sensitive_variables("data")
def contact_correct(*, contact: Contact, author: User, data: ContactInput, reason: str = "") -> tuple[Contact, bool]:
    """The author corrects their contact; every correction is kept in its history. Returns (contact, changed)."""
    if contact.author_id != author.pk:
        raise PermissionDenied
    reason = reason.strip()
    with transaction.atomic():
        family = lock_family(contact.family)
        if not contact_rights(author, family).corrects(contact):
            raise PermissionDenied
        contact = Contact.objects.select_for_update(of=("self",)).get(pk=contact.pk)
        if contact.voided_at is not None:
            raise ValidationError(VOIDED_IS_FINAL)
        data = _normalised(data)
        changes = {
            name: getattr(data, name) for name in CONTACT_FIELDS if getattr(contact, name) != getattr(data, name)
        }
        if not changes:
            return contact, False
        if correction_needs_reason(contact) and not reason:
            raise ValidationError(
                {
                    "reason": _("This contact was logged more than %(days)s days ago: say why it is corrected.")
                    % {"days": TrialSettings.current().contact_correction_days}
                }
            )
        _check_contact(family, data, replacing=contact)
        for name, value in changes.items():
            setattr(contact, name, value)
        _save_contact(contact, author, reason)
    return contact, True


VOIDED_IS_FINAL = gettext_lazy("A voided contact cannot be corrected.")


def contact_void(*, contact: Contact, voided_by: User, reason: str) -> tuple[Contact, bool]:
    """Void a contact logged by mistake (the wrong family, logged twice): it is kept with its history and shown
    struck through, and the database's daily totals leave it out, so no day, week or end date counts it. Its author
    voids it while they may correct it; the site's researchers at any time. Voiding is final: a voided contact is
    never corrected nor restored (the database refuses any change to it). Returns (contact, changed)."""
    reason = reason.strip()
    with transaction.atomic():
        family = lock_family(contact.family)
        contact = Contact.objects.select_for_update(of=("self",)).get(pk=contact.pk)
        if not contact_rights(voided_by, family).voids(contact):
            raise PermissionDenied
        if contact.voided_at is not None:
            return contact, False  # voided already (a double click, a colleague): the first void stands
        if not reason:
            raise ValidationError({"reason": _("Say why the contact is voided.")})
        contact.voided_at = timezone.now()
        contact.voided_by = voided_by
        contact.void_reason = reason
        save_as(contact, voided_by, reason)
    return contact, True
