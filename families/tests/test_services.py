"""The life of a family as the services enforce it: referral, screening, consent or decline, withdrawal.

Each rule is one test named after it. Dates that matter to a boundary are fixed dates in the past
(so that the screening date can be chosen freely); "today" is always Oslo's date.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from families import services
from families.models import (
    Child,
    Consent,
    ConsentDecision,
    Criterion,
    Family,
    FamilyIdentity,
    FamilyStatus,
    Parent,
    ReferralSource,
    Screening,
    StruggleArea,
    Withdrawal,
)
from families.tests.factories import days_ago, family_in_state
from trial.models import Site, TrialSettings

TWO_AREAS = [StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH]
THREE_AREAS = [StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH, StruggleArea.HOUSING]


def register(
    *,
    site,
    by,
    referral_date: date | None = None,
    parent_birth_years=(1990,),
    child_birth_dates=None,
    referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
    contact_name="Kari Nordmann",
    token=None,
) -> Family:
    return services.family_register(
        site=site,
        referral_date=referral_date or days_ago(30),
        referral_source=referral_source,
        parent_birth_years=list(parent_birth_years),
        child_birth_dates=list(child_birth_dates) if child_birth_dates is not None else [days_ago(7 * 365)],
        identifiers=services.Identifiers(contact_name=contact_name, phone="91234567"),
        registered_by=by,
        token=token or uuid.uuid4(),
    )


def screen(
    family,
    *,
    by,
    screened_on: date | None = None,
    involved_with_child_welfare=True,
    harmful_circumstances=True,
    struggle_areas=TWO_AREAS,
    rescreening_reason="",
    token=None,
) -> Screening:
    return services.family_screen(
        family=family,
        screened_on=screened_on or days_ago(20),
        involved_with_child_welfare=involved_with_child_welfare,
        harmful_circumstances=harmful_circumstances,
        struggle_areas=list(struggle_areas),
        rescreening_reason=rescreening_reason,
        screened_by=by,
        token=token or uuid.uuid4(),
    )


def consent(family, *, by, decided_on: date | None = None, form_version="v1", token=None) -> Consent:
    return services.family_record_consent(
        family=family,
        decided_on=decided_on or days_ago(10),
        form_version=form_version,
        obtained_by=by,
        recorded_by=by,
        token=token or uuid.uuid4(),
    )


def decline(family, *, by, decided_on: date | None = None, reason="not_interested", token=None) -> Consent:
    return services.family_record_decline(
        family=family,
        decided_on=decided_on or days_ago(10),
        reason=reason,
        details="",
        recorded_by=by,
        token=token or uuid.uuid4(),
    )


def withdraw(family, *, by, withdrawn_on: date | None = None, reason="moved_away", token=None) -> Withdrawal:
    return services.family_withdraw(
        family=family,
        withdrawn_on=withdrawn_on or days_ago(5),
        reason=reason,
        data_may_be_kept=True,
        recorded_by=by,
        token=token or uuid.uuid4(),
    )


def error_fields(error: ValidationError) -> set[str]:
    return set(error.error_dict) if hasattr(error, "error_dict") else set()


def reload(family: Family) -> Family:
    return Family.objects.get(pk=family.pk)


def record_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Family, Parent, Child, FamilyIdentity, Screening, Consent, Withdrawal)
    }


# --- Consent and decline need an eligible screening ------------------------------------------------


@pytest.mark.parametrize("state", ["referred", "ineligible"])
def test_it_refuses_consent_for_a_family_not_screened_eligible(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        consent(family, by=alice)
    assert family.study_id in str(refused.value)
    assert reload(family).status == state
    assert not Consent.objects.exists()


def test_it_refuses_consent_for_an_ineligible_family(alice, oei):
    family = family_in_state("ineligible", site=oei, by=alice)
    with pytest.raises(ValidationError, match="not eligible"):
        consent(family, by=alice)


def test_it_refuses_consent_for_an_unscreened_family(alice, oei):
    family = family_in_state("referred", site=oei, by=alice)
    with pytest.raises(ValidationError, match="must be screened eligible"):
        consent(family, by=alice)


@pytest.mark.parametrize("state", ["referred", "ineligible"])
def test_it_refuses_a_decline_for_a_family_not_screened_eligible(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    with pytest.raises(ValidationError):
        decline(family, by=alice)
    assert reload(family).status == state
    assert not Consent.objects.exists()


def test_it_records_consent_of_an_eligible_family(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    recorded = consent(family, by=alice, form_version="  v2.1 ")
    assert recorded.decision == ConsentDecision.CONSENTED
    assert recorded.form_version == "v2.1"
    assert reload(family).status == FamilyStatus.CONSENTED


def test_it_refuses_consent_without_a_form_version(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        consent(family, by=alice, form_version="   ")
    assert error_fields(refused.value) == {"form_version"}
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_refuses_consent_without_who_obtained_it(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(ValidationError):
        services.family_record_consent(
            family=family,
            decided_on=days_ago(10),
            form_version="v1",
            obtained_by=None,
            recorded_by=alice,
            token=uuid.uuid4(),
        )
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_refuses_a_decline_without_a_reason(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(ValidationError):
        decline(family, by=alice, reason="")
    assert reload(family).status == FamilyStatus.ELIGIBLE
    assert not Consent.objects.exists()


def test_it_refuses_a_decline_with_an_unknown_reason(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        decline(family, by=alice, reason="bored")
    assert "decline_reason" in error_fields(refused.value)
    assert reload(family).status == FamilyStatus.ELIGIBLE
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    ("state", "second"),
    [
        ("consented", consent),
        ("consented", decline),
        ("withdrawn", consent),
    ],
)
def test_it_refuses_a_decision_after_consent(alice, oei, state, second):
    # A declined family may answer again (test_new_decision.py); after consent, a change of mind is a withdrawal.
    family = family_in_state(state, site=oei, by=alice)
    first = Consent.objects.get(family=family)
    with pytest.raises(ValidationError, match="has already consented"):
        second(family, by=alice)
    assert Consent.objects.get(family=family) == first
    assert Consent.objects.get(family=family).decision == first.decision
    assert reload(family).status == state


# --- Dates: not in the future (Oslo), not before the step they follow -------------------------------


def test_it_refuses_a_referral_dated_in_the_future(alice, oei):
    with pytest.raises(ValidationError) as refused:
        register(site=oei, by=alice, referral_date=timezone.localdate() + timedelta(days=1))
    assert error_fields(refused.value) == {"referral_date"}
    assert not Family.objects.exists()


def test_it_refuses_a_screening_dated_before_the_referral(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 2))
    with pytest.raises(ValidationError) as refused:
        screen(family, by=alice, screened_on=date(2025, 6, 1))
    assert error_fields(refused.value) == {"screened_on"}
    assert "before the referral date" in str(refused.value)
    assert reload(family).status == FamilyStatus.REFERRED
    assert not Screening.objects.exists()


def test_it_accepts_a_screening_on_the_referral_date(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 2))
    assert screen(family, by=alice, screened_on=date(2025, 6, 2)).eligible


def test_it_refuses_a_screening_dated_in_the_future(alice, oei):
    family = register(site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        screen(family, by=alice, screened_on=timezone.localdate() + timedelta(days=1))
    assert error_fields(refused.value) == {"screened_on"}
    assert "future" in str(refused.value)
    assert not Screening.objects.exists()


def test_it_accepts_a_screening_dated_today(alice, oei):
    family = register(site=oei, by=alice)
    assert screen(family, by=alice, screened_on=timezone.localdate()).screened_on == timezone.localdate()


def test_it_counts_today_in_oslo_time(alice, oei):
    # 23:30 UTC on 26 November is already 00:30 on 27 November in Oslo.
    late_evening_utc = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=late_evening_utc):
        assert timezone.localdate() == date(2026, 11, 27)
        family = register(site=oei, by=alice, referral_date=date(2026, 11, 20))
        with pytest.raises(ValidationError, match="future"):
            screen(family, by=alice, screened_on=date(2026, 11, 28))
        assert screen(family, by=alice, screened_on=date(2026, 11, 27)).eligible
        assert consent(family, by=alice, decided_on=date(2026, 11, 27)).decided_on == date(2026, 11, 27)


@pytest.mark.parametrize("record", [consent, decline])
def test_it_refuses_a_decision_dated_before_the_screening(alice, oei, record):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1))
    screen(family, by=alice, screened_on=date(2025, 6, 10))
    with pytest.raises(ValidationError) as refused:
        record(family, by=alice, decided_on=date(2025, 6, 9))
    assert error_fields(refused.value) == {"decided_on"}
    assert "before the screening" in str(refused.value)
    assert reload(family).status == FamilyStatus.ELIGIBLE
    assert record(family, by=alice, decided_on=date(2025, 6, 10)).decided_on == date(2025, 6, 10)


def test_it_dates_the_decision_against_the_latest_screening(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1))
    screen(family, by=alice, screened_on=date(2025, 6, 5), harmful_circumstances=False)
    screen(family, by=alice, screened_on=date(2025, 6, 20), rescreening_reason="New report from the school")
    with pytest.raises(ValidationError, match="before the screening"):
        consent(family, by=alice, decided_on=date(2025, 6, 19))


@pytest.mark.parametrize("record", [consent, decline])
def test_it_refuses_a_decision_dated_in_the_future(alice, oei, record):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        record(family, by=alice, decided_on=timezone.localdate() + timedelta(days=1))
    assert error_fields(refused.value) == {"decided_on"}
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_refuses_a_date_that_is_a_typing_mistake(alice, oei):
    with pytest.raises(ValidationError, match="too far in the past"):
        register(site=oei, by=alice, referral_date=date(225, 1, 5))


# --- Screening again ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["eligible", "ineligible"])
@pytest.mark.parametrize("reason", ["", "   \n "])
def test_it_refuses_to_screen_again_without_a_reason(alice, oei, state, reason):
    family = family_in_state(state, site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        screen(family, by=alice, rescreening_reason=reason)
    assert error_fields(refused.value) == {"rescreening_reason"}
    assert family.screenings.count() == 1
    assert reload(family).status == state


def test_it_screens_again_with_a_reason_and_keeps_the_reason(alice, oei):
    family = family_in_state("ineligible", site=oei, by=alice)
    again = screen(family, by=alice, rescreening_reason="  The caseworker sent a new report.  ")
    assert again.rescreening_reason == "The caseworker sent a new report."
    assert Screening.objects.get(pk=again.pk).rescreening_reason == "The caseworker sent a new report."
    assert family.screenings.count() == 2
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_does_not_ask_for_a_reason_at_the_first_screening(alice, oei):
    family = family_in_state("referred", site=oei, by=alice)
    assert screen(family, by=alice).rescreening_reason == ""


@pytest.mark.parametrize("state", ["consented", "declined", "withdrawn"])
def test_it_refuses_to_screen_again_after_the_consent_decision(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    with pytest.raises(ValidationError, match="can no longer be screened"):
        screen(family, by=alice, rescreening_reason="Second thoughts")
    assert family.screenings.count() == 1
    assert reload(family).status == state


# --- Withdrawal -------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["referred", "eligible", "ineligible", "declined", "withdrawn"])
def test_it_refuses_withdrawal_of_a_family_that_has_not_consented(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    withdrawals_before = Withdrawal.objects.count()
    with pytest.raises(ValidationError, match="Only a family that has consented can withdraw"):
        withdraw(family, by=alice)
    assert Withdrawal.objects.count() == withdrawals_before
    assert reload(family).status == state


def test_it_refuses_a_withdrawal_dated_before_the_consent(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    consented_on = family.consent.decided_on
    with pytest.raises(ValidationError) as refused:
        withdraw(family, by=alice, withdrawn_on=consented_on - timedelta(days=1))
    assert error_fields(refused.value) == {"withdrawn_on"}
    assert "before the consent" in str(refused.value)
    assert reload(family).status == FamilyStatus.CONSENTED
    assert withdraw(family, by=alice, withdrawn_on=consented_on).withdrawn_on == consented_on
    assert reload(family).status == FamilyStatus.WITHDRAWN


def test_it_refuses_a_withdrawal_dated_in_the_future(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    with pytest.raises(ValidationError, match="future"):
        withdraw(family, by=alice, withdrawn_on=timezone.localdate() + timedelta(days=1))
    assert reload(family).status == FamilyStatus.CONSENTED


def test_it_refuses_a_withdrawal_with_an_unknown_reason(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        withdraw(family, by=alice, reason="")
    assert "reason" in error_fields(refused.value)
    assert not Withdrawal.objects.exists()
    assert reload(family).status == FamilyStatus.CONSENTED


# --- Eligibility: computed from the household and the trial settings --------------------------------


def test_it_finds_a_family_that_meets_every_criterion_eligible(alice, oei):
    family = register(site=oei, by=alice)
    screening = screen(family, by=alice)
    assert screening.eligible
    assert screening.failed_criteria == []
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_stores_every_failed_criterion_as_a_reason(alice, oei):
    family = register(
        site=oei,
        by=alice,
        referral_date=date(2025, 6, 1),
        parent_birth_years=[2010, 2011],
        child_birth_dates=[date(2000, 1, 1), date(2005, 5, 5)],
    )
    screening = screen(
        family,
        by=alice,
        screened_on=date(2025, 6, 2),
        involved_with_child_welfare=False,
        harmful_circumstances=False,
        struggle_areas=[StruggleArea.HOUSING],
    )
    assert not screening.eligible
    assert sorted(Screening.objects.get(pk=screening.pk).failed_criteria) == sorted(Criterion.values)
    assert reload(family).status == FamilyStatus.INELIGIBLE


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"involved_with_child_welfare": False}, [Criterion.CHILD_WELFARE]),
        ({"harmful_circumstances": False}, [Criterion.HARMFUL_CIRCUMSTANCES]),
        ({"struggle_areas": [StruggleArea.FINANCES]}, [Criterion.STRUGGLE_AREAS]),
        ({"struggle_areas": []}, [Criterion.STRUGGLE_AREAS]),
    ],
)
def test_it_stores_the_one_criterion_that_failed(alice, oei, change, failed):
    family = register(site=oei, by=alice)
    screening = screen(family, by=alice, **change)
    assert not screening.eligible
    assert Screening.objects.get(pk=screening.pk).failed_criteria == [str(code) for code in failed]
    assert reload(family).status == FamilyStatus.INELIGIBLE


def test_it_counts_a_parent_as_adult_from_the_start_of_the_year_they_turn_18(alice, oei):
    # Only the birth year is kept: on 1 January 2026 a parent born in 2008 counts as 18.
    family = register(site=oei, by=alice, referral_date=date(2025, 12, 20), parent_birth_years=[2008])
    assert screen(family, by=alice, screened_on=date(2026, 1, 1)).eligible


def test_it_refuses_a_parent_who_turns_18_only_next_year(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 12, 20), parent_birth_years=[2009])
    screening = screen(family, by=alice, screened_on=date(2026, 1, 1))
    assert screening.failed_criteria == [Criterion.PARENT_AGE]


def test_it_refuses_a_parent_on_the_last_day_of_the_year_before_they_turn_18(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 12, 1), parent_birth_years=[2008])
    screening = screen(family, by=alice, screened_on=date(2025, 12, 31))
    assert screening.failed_criteria == [Criterion.PARENT_AGE]


def test_it_needs_only_one_parent_old_enough(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), parent_birth_years=[2010, 2007])
    assert screen(family, by=alice, screened_on=date(2025, 6, 2)).eligible


def test_it_refuses_a_child_who_turns_18_on_the_screening_date(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), child_birth_dates=[date(2007, 6, 15)])
    screening = screen(family, by=alice, screened_on=date(2025, 6, 15))
    assert screening.failed_criteria == [Criterion.CHILD_AGE]


def test_it_accepts_a_child_screened_the_day_before_they_turn_18(alice, oei):
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), child_birth_dates=[date(2007, 6, 16)])
    assert screen(family, by=alice, screened_on=date(2025, 6, 15)).eligible


def test_it_ages_a_child_born_on_29_february_on_1_march(alice, oei):
    # Born 29.02.2008: not 18 on 28.02.2026, 18 on 01.03.2026 (there is no 29.02.2026).
    family = register(site=oei, by=alice, referral_date=date(2026, 2, 1), child_birth_dates=[date(2008, 2, 29)])
    assert screen(family, by=alice, screened_on=date(2026, 2, 28)).eligible
    again = screen(family, by=alice, screened_on=date(2026, 3, 1), rescreening_reason="Check again")
    assert again.failed_criteria == [Criterion.CHILD_AGE]


def test_it_needs_only_one_child_young_enough(alice, oei):
    family = register(
        site=oei,
        by=alice,
        referral_date=date(2025, 6, 1),
        child_birth_dates=[date(2001, 1, 1), date(2020, 1, 1)],
    )
    assert screen(family, by=alice, screened_on=date(2025, 6, 2)).eligible


def test_it_counts_distinct_struggle_areas_only(alice, oei):
    family = register(site=oei, by=alice)
    screening = screen(family, by=alice, struggle_areas=[StruggleArea.FINANCES, StruggleArea.FINANCES])
    assert screening.failed_criteria == [Criterion.STRUGGLE_AREAS]
    assert screening.struggle_areas == [StruggleArea.FINANCES]


def test_it_refuses_a_struggle_area_not_on_the_list(alice, oei):
    family = register(site=oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        screen(family, by=alice, struggle_areas=[StruggleArea.FINANCES, "gambling"])
    assert error_fields(refused.value) == {"struggle_areas"}
    assert not Screening.objects.exists()


def test_it_applies_changed_trial_settings_at_the_next_screening(alice, oei, trial_settings):
    # A 13-year-old and two areas: eligible under the registry's defaults, not under the published
    # pilot's "under 12" with at least three areas.
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), child_birth_dates=[date(2012, 3, 1)])
    first = screen(family, by=alice, screened_on=date(2025, 6, 2))
    assert first.eligible
    assert first.thresholds == {"min_parent_age": 18, "max_child_age": 18, "min_struggle_areas": 2}

    TrialSettings.objects.filter(pk=trial_settings.pk).update(max_child_age=12, min_struggle_areas=3)
    second = screen(family, by=alice, screened_on=date(2025, 6, 3), rescreening_reason="Pilot criteria")
    assert not second.eligible
    assert sorted(second.failed_criteria) == sorted([Criterion.CHILD_AGE, Criterion.STRUGGLE_AREAS])
    assert Screening.objects.get(pk=second.pk).thresholds == {
        "min_parent_age": 18,
        "max_child_age": 12,
        "min_struggle_areas": 3,
    }
    assert reload(family).status == FamilyStatus.INELIGIBLE
    assert Screening.objects.get(pk=first.pk).thresholds["max_child_age"] == 18

    third = screen(
        family, by=alice, screened_on=date(2025, 6, 4), struggle_areas=THREE_AREAS, rescreening_reason="Three areas"
    )
    assert third.failed_criteria == [Criterion.CHILD_AGE]


def test_it_accepts_a_child_of_11_under_the_pilots_age_limit(alice, oei, trial_settings):
    TrialSettings.objects.filter(pk=trial_settings.pk).update(max_child_age=12, min_struggle_areas=3)
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), child_birth_dates=[date(2013, 6, 3)])
    screening = screen(family, by=alice, screened_on=date(2025, 6, 2), struggle_areas=THREE_AREAS)
    assert screening.eligible
    assert screening.thresholds["max_child_age"] == 12


def test_it_applies_a_changed_minimum_parent_age(alice, oei, trial_settings):
    TrialSettings.objects.filter(pk=trial_settings.pk).update(min_parent_age=20)
    family = register(site=oei, by=alice, referral_date=date(2025, 6, 1), parent_birth_years=[2006])
    screening = screen(family, by=alice, screened_on=date(2025, 6, 2))
    assert screening.failed_criteria == [Criterion.PARENT_AGE]
    assert screening.thresholds["min_parent_age"] == 20


# --- Study IDs --------------------------------------------------------------------------------------


def test_it_numbers_the_families_of_a_site_from_001(alice, oei):
    study_ids = [register(site=oei, by=alice).study_id for _ in range(3)]
    assert study_ids == ["OEI-001", "OEI-002", "OEI-003"]
    assert Site.objects.get(pk=oei.pk).last_family_number == 3
    assert list(Family.objects.filter(site=oei).values_list("number", flat=True)) == [1, 2, 3]


def test_it_numbers_each_site_on_its_own(alice, bob, oei, lar):
    for _ in range(5):
        register(site=oei, by=alice)
    assert register(site=lar, by=bob).study_id == "LAR-001"
    assert register(site=oei, by=alice).study_id == "OEI-006"
    assert register(site=lar, by=bob).study_id == "LAR-002"
    assert Site.objects.get(pk=oei.pk).last_family_number == 6
    assert Site.objects.get(pk=lar.pk).last_family_number == 2


def test_it_gives_a_thousandth_family_a_four_digit_study_id(alice, oei):
    Site.objects.filter(pk=oei.pk).update(last_family_number=999)
    assert register(site=oei, by=alice).study_id == "OEI-1000"


# --- A resubmitted form returns what the first submission made ---------------------------------------


def test_it_registers_a_resubmitted_family_once(alice, oei):
    token = uuid.uuid4()
    first = register(site=oei, by=alice, token=token)
    counts = record_counts()
    again = register(site=oei, by=alice, token=token)
    assert again.pk == first.pk
    assert again.study_id == "OEI-001"
    assert record_counts() == counts
    assert Site.objects.get(pk=oei.pk).last_family_number == 1


def test_it_screens_a_resubmitted_screening_once(alice, oei):
    family = register(site=oei, by=alice)
    token = uuid.uuid4()
    first = screen(family, by=alice, token=token)
    again = screen(family, by=alice, token=token)
    assert again.pk == first.pk
    assert family.screenings.count() == 1
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_records_a_resubmitted_consent_once(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    token = uuid.uuid4()
    first = consent(family, by=alice, token=token)
    again = consent(family, by=alice, token=token)
    assert again.pk == first.pk
    assert Consent.objects.filter(family=family).count() == 1
    assert reload(family).status == FamilyStatus.CONSENTED


def test_it_records_a_resubmitted_decline_once(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    token = uuid.uuid4()
    first = decline(family, by=alice, token=token)
    again = decline(family, by=alice, token=token)
    assert again.pk == first.pk
    assert Consent.objects.filter(family=family).count() == 1
    assert reload(family).status == FamilyStatus.DECLINED


def test_it_records_a_resubmitted_withdrawal_once(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    token = uuid.uuid4()
    first = withdraw(family, by=alice, token=token)
    again = withdraw(family, by=alice, token=token)
    assert again.pk == first.pk
    assert Withdrawal.objects.filter(family=family).count() == 1
    assert reload(family).status == FamilyStatus.WITHDRAWN


def test_it_keeps_the_audit_trail_of_a_resubmission_to_one_entry(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    token = uuid.uuid4()
    consent(family, by=alice, token=token)
    history_before = Family.history.filter(id=family.pk).count()
    consent(family, by=alice, token=token)
    assert Family.history.filter(id=family.pk).count() == history_before


# --- A refused call leaves nothing behind ------------------------------------------------------------


@pytest.mark.parametrize(
    "household",
    [
        {"parent_birth_years": [], "child_birth_dates": [date(2020, 1, 1)]},
        {"parent_birth_years": [1990], "child_birth_dates": []},
        {"parent_birth_years": [1990] * 5, "child_birth_dates": [date(2020, 1, 1)]},
        {"parent_birth_years": [1990], "child_birth_dates": [date(2020, 1, 1)] * 13},
        {"parent_birth_years": [1899], "child_birth_dates": [date(2020, 1, 1)]},
        {"parent_birth_years": [1990], "child_birth_dates": [timezone.localdate() + timedelta(days=1)]},
    ],
    ids=["no parent", "no child", "five parents", "thirteen children", "parent born 1899", "unborn child"],
)
def test_it_registers_nothing_for_an_invalid_household(alice, oei, household):
    register(site=oei, by=alice)
    counts = record_counts()
    with pytest.raises(ValidationError):
        register(site=oei, by=alice, **household)
    assert record_counts() == counts
    assert Site.objects.get(pk=oei.pk).last_family_number == 1
    assert register(site=oei, by=alice).study_id == "OEI-002"


def test_it_registers_nothing_when_the_referral_source_is_unknown(alice, oei):
    # This one fails inside the transaction, after the site's counter was taken.
    counts = record_counts()
    with pytest.raises(ValidationError) as refused:
        register(site=oei, by=alice, referral_source="neighbour")
    assert "referral_source" in error_fields(refused.value)
    assert record_counts() == counts
    assert Site.objects.get(pk=oei.pk).last_family_number == 0
    assert not Family.history.exists()
    assert register(site=oei, by=alice).study_id == "OEI-001"


def test_it_registers_nothing_without_a_contact_name(alice, oei):
    counts = record_counts()
    with pytest.raises(ValidationError) as refused:
        register(site=oei, by=alice, contact_name="  ")
    assert error_fields(refused.value) == {"contact_name"}
    assert record_counts() == counts
    assert Site.objects.get(pk=oei.pk).last_family_number == 0


def test_it_records_nothing_for_a_refused_decline(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    counts = record_counts()
    history = Family.history.filter(id=family.pk).count()
    with pytest.raises(ValidationError):
        decline(family, by=alice, reason="bored")
    assert record_counts() == counts
    assert Family.history.filter(id=family.pk).count() == history
    assert reload(family).status == FamilyStatus.ELIGIBLE


def test_it_records_nothing_for_a_refused_withdrawal(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    counts = record_counts()
    with pytest.raises(ValidationError):
        withdraw(family, by=alice, reason="bored")
    assert record_counts() == counts
    assert reload(family).status == FamilyStatus.CONSENTED


# --- The database holds the rules even when the services are bypassed --------------------------------


def _family_row(site, user, *, number: int, study_id: str) -> Family:
    return Family(
        site=site,
        number=number,
        study_id=study_id,
        referral_date=date(2025, 6, 1),
        referral_source=ReferralSource.OTHER,
        registered_by=user,
        registration_token=uuid.uuid4(),
    )


def test_it_refuses_two_families_with_the_same_number_at_a_site_in_the_database(alice, oei):
    _family_row(oei, alice, number=1, study_id="OEI-001").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _family_row(oei, alice, number=1, study_id="OEI-001b").save()
    assert Family.objects.count() == 1


def test_it_allows_the_same_number_at_two_sites_in_the_database(alice, oei, lar):
    _family_row(oei, alice, number=1, study_id="OEI-001").save()
    _family_row(lar, alice, number=1, study_id="LAR-001").save()
    assert Family.objects.count() == 2


def test_it_refuses_a_family_number_of_zero_in_the_database(alice, oei):
    with pytest.raises(IntegrityError), transaction.atomic():
        _family_row(oei, alice, number=0, study_id="OEI-000").save()


def test_it_refuses_an_unknown_status_in_the_database(alice, oei):
    family = _family_row(oei, alice, number=1, study_id="OEI-001")
    family.status = "randomised-twice"
    with pytest.raises(IntegrityError), transaction.atomic():
        family.save()


def test_it_refuses_a_consent_without_a_form_version_in_the_database(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            family=family,
            decision=ConsentDecision.CONSENTED,
            decided_on=days_ago(5),
            form_version="",
            obtained_by=alice,
            recorded_by=alice,
            submission_token=uuid.uuid4(),
        )
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"decision": "consented", "form_version": "v1", "obtained_by": None},
        {"decision": "consented", "form_version": "v1", "decline_reason": "privacy"},
        {"decision": "declined", "decline_reason": ""},
        {"decision": "declined", "decline_reason": "privacy", "form_version": "v1"},
        {"decision": "maybe", "form_version": "v1"},
    ],
    ids=["consent nobody obtained", "consent with decline reason", "decline without reason", "decline with form", "?"],
)
def test_it_refuses_a_consent_whose_fields_contradict_the_decision_in_the_database(alice, oei, fields):
    family = family_in_state("eligible", site=oei, by=alice)
    values = {"obtained_by": alice, **fields}
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            family=family, decided_on=days_ago(5), recorded_by=alice, submission_token=uuid.uuid4(), **values
        )
    assert not Consent.objects.exists()


def test_it_refuses_a_second_consent_row_in_the_database(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(
            family=family,
            decision=ConsentDecision.DECLINED,
            decided_on=days_ago(5),
            decline_reason="privacy",
            recorded_by=alice,
            submission_token=uuid.uuid4(),
        )
    assert Consent.objects.filter(family=family).count() == 1


def test_it_refuses_an_eligible_screening_with_failed_criteria_in_the_database(alice, oei):
    family = register(site=oei, by=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Screening.objects.create(
            family=family,
            screened_on=days_ago(20),
            screened_by=alice,
            involved_with_child_welfare=True,
            harmful_circumstances=True,
            struggle_areas=TWO_AREAS,
            eligible=True,
            failed_criteria=[Criterion.PARENT_AGE],
            submission_token=uuid.uuid4(),
        )
    assert not Screening.objects.exists()


def test_it_refuses_a_parent_born_before_1900_in_the_database(alice, oei):
    family = register(site=oei, by=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Parent.objects.create(family=family, birth_year=1850)
    assert family.parents.count() == 1


def test_it_refuses_two_withdrawals_in_the_database(alice, oei):
    family = family_in_state("withdrawn", site=oei, by=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Withdrawal.objects.create(
            family=family,
            withdrawn_on=days_ago(1),
            reason="other",
            data_may_be_kept=False,
            recorded_by=alice,
            submission_token=uuid.uuid4(),
        )
    assert Withdrawal.objects.filter(family=family).count() == 1
