"""Families in any state, made through the services (so they carry the same audit trail as real ones)."""

import uuid
from datetime import date, timedelta

from django.utils import timezone

from families import services
from families.models import Family, ReferralSource, StruggleArea


def days_ago(n: int) -> date:
    return timezone.localdate() - timedelta(days=n)


def register_family(*, site, by, referral_days_ago: int = 30, parent_birth_years=(1990,), child_ages=(7,)) -> Family:
    return services.family_register(
        site=site,
        referral_date=days_ago(referral_days_ago),
        referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
        parent_birth_years=list(parent_birth_years),
        child_birth_dates=[days_ago(365 * age + 30) for age in child_ages],
        identifiers=services.Identifiers(contact_name="Kari Nordmann", national_id_number="", phone="91234567"),
        registered_by=by,
        token=uuid.uuid4(),
    )


def screen_family(family: Family, *, by, eligible: bool = True, on_days_ago: int = 20):
    return services.family_screen(
        family=family,
        screened_on=days_ago(on_days_ago),
        involved_with_child_welfare=True,
        harmful_circumstances=eligible,
        struggle_areas=[StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH],
        rescreening_reason="" if family.status == "referred" else "New information",
        screened_by=by,
        token=uuid.uuid4(),
    )


def consent_family(family: Family, *, by, on_days_ago: int = 10):
    return services.family_record_consent(
        family=family,
        decided_on=days_ago(on_days_ago),
        form_version="v1",
        obtained_by=by,
        recorded_by=by,
        token=uuid.uuid4(),
    )


def family_in_state(state: str, *, site, by) -> Family:
    """A family that is `referred`, `eligible`, `ineligible`, `consented`, `declined` or `withdrawn`."""
    family = register_family(site=site, by=by)
    if state == "referred":
        return family
    screen_family(family, by=by, eligible=state != "ineligible")
    if state in ("eligible", "ineligible"):
        return Family.objects.get(pk=family.pk)
    if state == "declined":
        services.family_record_decline(
            family=family, decided_on=days_ago(10), reason="not_interested", recorded_by=by, token=uuid.uuid4()
        )
    else:
        consent_family(family, by=by)
    if state == "withdrawn":
        services.family_withdraw(
            family=family,
            withdrawn_on=days_ago(5),
            reason="moved_away",
            data_may_be_kept=True,
            recorded_by=by,
            token=uuid.uuid4(),
        )
    return Family.objects.get(pk=family.pk)


__all__ = ["StruggleArea", "consent_family", "days_ago", "family_in_state", "register_family", "screen_family"]
