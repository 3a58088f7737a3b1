"""The Family Partner's work as the services and the database enforce it: assigning families to partners within
their capacity, ending interventions, withdrawal, the contact log and its corrections.

Every rule has a test that tries to break it. Families that need a history (an intervention of 3 or 18
months, contacts on past days) are randomised with Django's clock set back to a fixed moment: the services
themselves run at today's real date, so "not in the future" keeps its meaning.
"""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from families import services as family_services
from families.models import Family, FamilyStatus
from families.tests.factories import days_ago
from randomization.models import Arm
from randomization.tests.factories import ready_to_randomise
from trial.models import TrialSettings
from visits import selectors, services
from visits.models import (
    Assignment,
    Contact,
    ContactDay,
    Element,
    EndReason,
    InterventionPeriod,
    PartnerProfile,
    PartnerStatus,
)
from visits.tests.factories import contact_input, log_contact, partner, randomised_family

# A Monday, 10:00 in Oslo: the day the "long ago" families are randomised (and, by default, assigned).
LONG_AGO = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
LONG_AGO_DAY = date(2025, 1, 6)
WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


# --- Arrange --------------------------------------------------------------------------------------------------


@pytest.fixture
def fiona(oei) -> PartnerProfile:
    """A Family Partner at Øvre Eiker with the trial's usual capacity of five families."""
    return partner(oei, "fiona", capacity=5, first_name="Fiona", last_name="Fjell")


@pytest.fixture
def gunnar(oei) -> PartnerProfile:
    """A Family Partner at Øvre Eiker who takes two families at a time."""
    return partner(oei, "gunnar", capacity=2, first_name="Gunnar", last_name="Grov")


@pytest.fixture
def lene(lar) -> PartnerProfile:
    """A Family Partner at Larvik."""
    return partner(lar, "lene", capacity=5, first_name="Lene", last_name="Lund")


def randomised_long_ago(site, *, researcher, moment: datetime = LONG_AGO, arm: str = Arm.INTERVENTION) -> Family:
    """A family referred, screened, consented and randomised with the clock at `moment`."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return randomised_family(site, researcher=researcher, arm=arm)


def assign(family, to, *, by, on: date | None = None, reason: str = "") -> services.AssignmentResult:
    return services.family_assign(
        family=family, partner=to, started_on=on or days_ago(0), assigned_by=by, reason=reason
    )


def assigned_long_ago(site, *, researcher, to, started_on: date = LONG_AGO_DAY) -> Family:
    family = randomised_long_ago(site, researcher=researcher)
    assign(family, to, by=researcher, on=started_on)
    return Family.objects.get(pk=family.pk)


def end(family, *, by, on: date, reason: str = EndReason.GOALS_REACHED, details: str = "") -> InterventionPeriod:
    return services.intervention_end(family=family, ended_on=on, reason=reason, details=details, ended_by=by)


def withdraw(family, *, by, on: date):
    return family_services.family_withdraw(
        family=Family.objects.get(pk=family.pk),
        withdrawn_on=on,
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=by,
        token=uuid.uuid4(),
    )


def correct(contact, *, by, reason: str = "", **changes):
    data = services.ContactInput(
        contact_date=changes.get("contact_date", contact.contact_date),
        duration_quarters=changes.get("duration_quarters", contact.duration_quarters),
        kind=changes.get("kind", contact.kind),
        elements=changes.get("elements", list(contact.elements)),
        notes=changes.get("notes", contact.notes),
    )
    return services.contact_correct(contact=contact, author=by, data=data, reason=reason)


def active_families(profile: PartnerProfile) -> int:
    return PartnerProfile.objects.values_list("active_families", flat=True).get(pk=profile.pk)


def assert_counts_kept() -> None:
    """Every partner's stored count equals their assignments that have not ended."""
    for profile in PartnerProfile.objects.all():
        real = Assignment.objects.filter(partner=profile, ended_on__isnull=True).count()
        assert profile.active_families == real, f"{profile}: stored {profile.active_families}, real {real}"


def assert_days_kept(family) -> None:
    """The family's daily totals equal the sum of its contacts on each day (a day left empty keeps 0)."""
    sums: dict[date, int] = {}
    for day, quarters in Contact.objects.filter(family=family).values_list("contact_date", "duration_quarters"):
        sums[day] = sums.get(day, 0) + quarters
    stored = {
        day: quarters
        for day, quarters in ContactDay.objects.filter(family=family).values_list("day", "quarters")
        if quarters
    }
    assert stored == sums


def messages(error: ValidationError) -> str:
    return " ".join(error.messages)


# --- Assignment: who gets a Family Partner ---------------------------------------------------------------------


def test_it_assigns_an_intervention_family_and_starts_its_intervention(oei, alice, fiona):
    family = randomised_long_ago(oei, researcher=alice)

    result = assign(family, fiona, by=alice, on=date(2025, 1, 20))

    assert result.created is True
    assert result.assignment.partner == fiona
    assert result.assignment.started_on == date(2025, 1, 20)
    assert result.assignment.ended_on is None
    period = InterventionPeriod.objects.get(family=family)
    assert (period.started_on, period.planned_end_on, period.ended_on) == (date(2025, 1, 20), date(2026, 1, 20), None)
    assert active_families(fiona) == 1
    assert_counts_kept()


def test_the_planned_end_follows_the_expected_length_in_the_trial_settings(oei, alice, fiona):
    trial_settings = TrialSettings.current()
    trial_settings.intervention_expected_months = 6
    trial_settings.save()
    family = randomised_long_ago(oei, researcher=alice)

    assign(family, fiona, by=alice, on=date(2025, 8, 31))

    # Six months after 31 August is the last day of February.
    assert InterventionPeriod.objects.get(family=family).planned_end_on == date(2026, 2, 28)


def test_it_refuses_a_control_family(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)

    with pytest.raises(ValidationError, match="not in the intervention arm"):
        assign(family, fiona, by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert not InterventionPeriod.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_it_refuses_a_family_that_consented_but_is_not_randomised(oei, alice, fiona):
    family = ready_to_randomise(oei, by=alice)

    with pytest.raises(ValidationError, match="Only a randomised family"):
        assign(family, fiona, by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_it_refuses_a_withdrawn_intervention_family(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    withdraw(family, by=alice, on=days_ago(0))

    with pytest.raises(ValidationError, match="Only a randomised family"):
        assign(family, fiona, by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_it_refuses_a_partner_of_another_site(oei, alice, lene):
    family = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError) as refused:
        assign(family, lene, by=alice)

    assert "own site" in messages(refused.value)
    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(lene) == 0


def test_it_refuses_a_partner_on_leave_and_accepts_them_again_once_back(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    services.partner_set_status(partner=fiona, status=PartnerStatus.ON_LEAVE, changed_by=alice)

    with pytest.raises(ValidationError) as refused:
        assign(family, fiona, by=alice)

    assert "Fiona Fjell is on leave" in messages(refused.value)
    assert active_families(fiona) == 0
    services.partner_set_status(partner=fiona, status=PartnerStatus.ACTIVE, changed_by=alice)
    assert assign(family, fiona, by=alice).created is True
    assert active_families(fiona) == 1


def test_a_partner_on_leave_keeps_the_families_they_have(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    assign(family, fiona, by=alice)

    services.partner_set_status(partner=fiona, status=PartnerStatus.ON_LEAVE, changed_by=alice)

    assert Assignment.objects.get(family=family).ended_on is None
    assert active_families(fiona) == 1


def test_it_refuses_a_sixth_family_with_a_message_naming_the_partner(oei, alice, fiona):
    for _number in range(5):
        assert assign(randomised_family(oei, researcher=alice), fiona, by=alice).created is True
        assert_counts_kept()
    assert active_families(fiona) == 5
    sixth = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError) as refused:
        assign(sixth, fiona, by=alice)

    assert refused.value.message_dict["partner"] == [
        "Fiona Fjell has no free slot: 5 of 5 families already. Choose another Family Partner."
    ]
    assert not Assignment.objects.filter(family=sixth).exists()
    assert not InterventionPeriod.objects.filter(family=sixth).exists()
    assert active_families(fiona) == 5
    assert_counts_kept()


def test_it_refuses_a_third_family_to_a_partner_who_takes_two(oei, alice, gunnar):
    for _number in range(2):
        assign(randomised_family(oei, researcher=alice), gunnar, by=alice)
    third = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError) as refused:
        assign(third, gunnar, by=alice)

    assert "Gunnar Grov has no free slot: 2 of 2 families" in messages(refused.value)
    assert active_families(gunnar) == 2
    assert_counts_kept()


def test_it_refuses_an_assignment_dated_in_the_future(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError) as refused:
        assign(family, fiona, by=alice, on=days_ago(-1))

    assert "started_on" in refused.value.message_dict
    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_it_refuses_an_assignment_dated_before_the_randomisation(oei, alice, fiona):
    family = randomised_long_ago(oei, researcher=alice)

    with pytest.raises(ValidationError) as refused:
        assign(family, fiona, by=alice, on=LONG_AGO_DAY - timedelta(days=1))

    assert refused.value.message_dict == {
        "started_on": ["The assignment cannot start before the family joined the study (2025-01-06)."]
    }
    assert not Assignment.objects.filter(family=family).exists()
    assert assign(family, fiona, by=alice, on=LONG_AGO_DAY).created is True


def test_assigning_the_same_partner_again_changes_nothing(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    first = assign(family, fiona, by=alice)
    history_rows = Assignment.history.count()

    again = assign(family, fiona, by=alice, reason="double click")

    assert again.created is False
    assert again.assignment.pk == first.assignment.pk
    assert Assignment.objects.filter(family=family).count() == 1
    assert InterventionPeriod.objects.filter(family=family).count() == 1
    assert Assignment.history.count() == history_rows
    assert active_families(fiona) == 1


def test_a_reassignment_needs_a_reason_and_changes_nothing_without_one(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        assign(family, gunnar, by=alice, on=date(2025, 3, 1), reason="   ")

    assert "reason" in refused.value.message_dict
    assert Assignment.objects.get(family=family).partner == fiona
    assert (active_families(fiona), active_families(gunnar)) == (1, 0)


def test_a_reassignment_ends_the_current_one_and_keeps_both_in_the_history(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    period_before = InterventionPeriod.objects.get(family=family)

    result = assign(family, gunnar, by=alice, on=date(2025, 3, 1), reason="Fiona moves to another team")

    assert result.created is True
    old, new = Assignment.objects.filter(family=family).order_by("started_on")
    assert (old.partner, old.started_on, old.ended_on) == (fiona, LONG_AGO_DAY, date(2025, 3, 1))
    assert old.end_reason == "Fiona moves to another team"
    assert (new.partner, new.started_on, new.ended_on) == (gunnar, date(2025, 3, 1), None)
    assert (active_families(fiona), active_families(gunnar)) == (0, 1)
    assert_counts_kept()
    period = InterventionPeriod.objects.get(family=family)
    assert (period.started_on, period.planned_end_on) == (period_before.started_on, period_before.planned_end_on)


def test_a_reassignment_frees_the_old_partners_slot_for_another_family(oei, alice, fiona, gunnar):
    first = assigned_long_ago(oei, researcher=alice, to=gunnar)
    assign(randomised_family(oei, researcher=alice), gunnar, by=alice)
    assign(first, fiona, by=alice, on=date(2025, 2, 1), reason="Too far to drive")
    waiting = randomised_family(oei, researcher=alice)

    assert assign(waiting, gunnar, by=alice).created is True

    assert (active_families(fiona), active_families(gunnar)) == (1, 2)
    assert_counts_kept()


def test_a_reassignment_to_a_full_partner_is_refused_and_leaves_everything_as_it_was(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    for _number in range(2):
        assign(randomised_family(oei, researcher=alice), gunnar, by=alice)

    with pytest.raises(ValidationError) as refused:
        assign(family, gunnar, by=alice, on=date(2025, 3, 1), reason="Closer to home")

    assert "Gunnar Grov has no free slot" in messages(refused.value)
    current = Assignment.objects.get(family=family)
    assert (current.partner, current.ended_on, current.end_reason) == (fiona, None, "")
    assert (active_families(fiona), active_families(gunnar)) == (1, 2)
    assert_counts_kept()


def writes_in(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if WRITE.match(query["sql"])]


@pytest.mark.parametrize("reassigning", [False, True], ids=["first assignment", "reassignment"])
def test_a_full_partner_is_refused_before_anything_is_written(oei, alice, fiona, gunnar, reassigning):
    """The service's own check refuses a full partner; the database's check constraint stands behind it, but the
    refusal must not come from an INSERT (or a reassignment's UPDATE) that the database then rolls back."""
    for _number in range(2):
        assign(randomised_family(oei, researcher=alice), gunnar, by=alice)
    family = (
        assigned_long_ago(oei, researcher=alice, to=fiona) if reassigning else randomised_family(oei, researcher=alice)
    )

    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as refused:
        assign(family, gunnar, by=alice, reason="Closer to home")

    assert refused.value.message_dict == {
        "partner": ["Gunnar Grov has no free slot: 2 of 2 families already. Choose another Family Partner."]
    }
    assert writes_in(queries) == []
    assert (active_families(fiona), active_families(gunnar)) == (1 if reassigning else 0, 2)


def test_a_control_family_refused_by_the_database_is_told_it_is_not_in_the_intervention_arm(oei, alice, fiona):
    """Were the service's arm check ever bypassed, the database's trigger refuses the control family: the
    researcher is told why, not that the partner has no free slot."""
    family = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)

    with (
        mock.patch("visits.services.is_intervention_family", return_value=True),
        pytest.raises(ValidationError) as refused,
    ):
        assign(family, fiona, by=alice)

    assert messages(refused.value) == f"{family.study_id} is not in the intervention arm and gets no Family Partner."
    assert not Assignment.objects.filter(family=family).exists()
    assert not InterventionPeriod.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_a_withdrawn_family_refused_by_the_database_is_told_it_is_withdrawn(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    withdraw(family, by=alice, on=days_ago(0))

    with mock.patch("visits.services.check_assignable"), pytest.raises(ValidationError) as refused:
        assign(family, fiona, by=alice)

    assert messages(refused.value) == f"Only a randomised family gets a Family Partner; {family.study_id} is withdrawn."
    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_the_database_refuses_a_partner_for_a_withdrawn_family(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    withdraw(family, by=alice, on=days_ago(0))

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_a_reassignment_cannot_start_before_the_current_assignment(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona, started_on=date(2025, 2, 1))

    with pytest.raises(ValidationError) as refused:
        assign(family, gunnar, by=alice, on=date(2025, 1, 31), reason="Closer to home")

    assert "before the current one" in messages(refused.value)
    assert Assignment.objects.get(family=family).ended_on is None
    assert (active_families(fiona), active_families(gunnar)) == (1, 0)


@pytest.mark.parametrize("who", ["bob", "carol", "paula", "frank", "fiona_herself"])
def test_only_a_researcher_of_the_familys_site_assigns(request, oei, alice, fiona, who):
    user = fiona.user if who == "fiona_herself" else request.getfixturevalue(who)
    family = randomised_family(oei, researcher=alice)

    with pytest.raises(PermissionDenied):
        assign(family, fiona, by=user)

    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


@pytest.mark.parametrize("who", ["bob", "carol", "paula", "frank"])
def test_only_a_researcher_of_the_site_sends_a_partner_on_leave(request, fiona, who):
    with pytest.raises(PermissionDenied):
        services.partner_set_status(
            partner=fiona, status=PartnerStatus.ON_LEAVE, changed_by=request.getfixturevalue(who)
        )

    assert PartnerProfile.objects.get(pk=fiona.pk).status == PartnerStatus.ACTIVE


# --- The count of active families, kept by the database --------------------------------------------------------


def test_the_database_refuses_a_sixth_active_assignment_made_behind_the_services_back(oei, alice, fiona):
    for _number in range(5):
        assign(randomised_family(oei, researcher=alice), fiona, by=alice)
    sixth = randomised_family(oei, researcher=alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(family=sixth, partner=fiona, started_on=days_ago(0), assigned_by=alice)

    assert not Assignment.objects.filter(family=sixth).exists()
    assert active_families(fiona) == 5


@pytest.mark.parametrize("state", ["control", "consented"])
def test_the_database_refuses_a_partner_for_a_family_not_randomised_to_the_intervention(oei, alice, fiona, state):
    if state == "control":
        family = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    else:
        family = ready_to_randomise(oei, by=alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


def test_the_database_refuses_moving_an_assignment_to_a_control_family(oei, alice, fiona):
    assign(randomised_family(oei, researcher=alice), fiona, by=alice)
    control = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.filter(partner=fiona).update(family=control)

    assert not Assignment.objects.filter(family=control).exists()


def test_the_database_refuses_a_second_active_assignment_of_one_family(oei, alice, fiona, gunnar):
    family = randomised_family(oei, researcher=alice)
    assign(family, fiona, by=alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(family=family, partner=gunnar, started_on=days_ago(0), assigned_by=alice)

    assert (active_families(fiona), active_families(gunnar)) == (1, 0)


def test_the_database_keeps_the_count_when_assignments_change_behind_the_services_back(oei, alice, fiona, gunnar):
    family = randomised_family(oei, researcher=alice)
    assign(family, fiona, by=alice)

    Assignment.objects.filter(family=family).update(partner=gunnar)
    assert (active_families(fiona), active_families(gunnar)) == (0, 1)
    Assignment.objects.filter(family=family).update(ended_on=days_ago(0))
    assert (active_families(fiona), active_families(gunnar)) == (0, 0)
    Assignment.objects.filter(family=family).update(ended_on=None)
    assert (active_families(fiona), active_families(gunnar)) == (0, 1)
    assert_counts_kept()


def test_saving_a_profile_loaded_before_an_assignment_keeps_the_databases_count(oei, alice, fiona):
    loaded_earlier = PartnerProfile.objects.get(pk=fiona.pk)
    assign(randomised_family(oei, researcher=alice), fiona, by=alice)

    loaded_earlier.capacity = 4
    loaded_earlier.save()

    assert active_families(fiona) == 1


# --- The intervention's end ------------------------------------------------------------------------------------


def test_ending_needs_an_intervention_that_started(oei, alice):
    family = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError, match="has not started"):
        end(family, by=alice, on=days_ago(0))

    assert not InterventionPeriod.objects.filter(family=family).exists()


def test_ending_refuses_a_date_in_the_future(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        end(family, by=alice, on=days_ago(-1))

    assert "ended_on" in refused.value.message_dict
    assert InterventionPeriod.objects.get(family=family).is_running


def test_ending_refuses_a_date_before_the_start(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona, started_on=date(2025, 2, 3))

    with pytest.raises(ValidationError) as refused:
        end(family, by=alice, on=date(2025, 2, 2))

    assert "ended_on" in refused.value.message_dict
    assert InterventionPeriod.objects.get(family=family).is_running
    assert active_families(fiona) == 1


def test_ending_refuses_a_date_before_the_current_partners_assignment(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    assign(family, gunnar, by=alice, on=date(2025, 3, 1), reason="Closer to home")

    with pytest.raises(ValidationError, match="cannot be before"):
        end(family, by=alice, on=date(2025, 2, 28))

    assert Assignment.objects.get(family=family, ended_on__isnull=True).partner == gunnar


@pytest.mark.parametrize(
    ("ended_on", "accepted"),
    [
        (date(2025, 4, 5), False),  # a day short of 3 months
        (date(2025, 4, 6), True),  # 3 months
        (date(2026, 1, 6), True),  # 12 months
        (date(2026, 7, 6), True),  # 18 months
        (date(2026, 7, 7), False),  # a day over 18 months
    ],
)
def test_completed_as_planned_only_between_the_minimum_and_the_maximum(oei, alice, fiona, ended_on, accepted):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    if accepted:
        period = end(family, by=alice, on=ended_on, reason=EndReason.COMPLETED)
        assert (period.ended_on, period.end_reason) == (ended_on, EndReason.COMPLETED)
    else:
        with pytest.raises(ValidationError) as refused:
            end(family, by=alice, on=ended_on, reason=EndReason.COMPLETED)
        assert "reason" in refused.value.message_dict
        assert InterventionPeriod.objects.get(family=family).is_running


def test_the_completion_bounds_come_from_the_trial_settings(oei, alice, fiona):
    trial_settings = TrialSettings.current()
    trial_settings.intervention_min_months = 6
    trial_settings.intervention_max_months = 12
    trial_settings.save()
    early = assigned_long_ago(oei, researcher=alice, to=fiona)
    late = assigned_long_ago(oei, researcher=alice, to=fiona)
    within = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError, match="shorter than 6 or longer than 12 months"):
        end(early, by=alice, on=date(2025, 4, 6), reason=EndReason.COMPLETED)
    with pytest.raises(ValidationError, match="late"):
        end(late, by=alice, on=date(2026, 1, 7), reason=EndReason.COMPLETED)

    assert end(within, by=alice, on=date(2025, 7, 6), reason=EndReason.COMPLETED).ended_on == date(2025, 7, 6)


@pytest.mark.parametrize(
    ("reason", "ended_on"),
    [
        (EndReason.GOALS_REACHED, date(2025, 2, 1)),
        (EndReason.FAMILY_ENDED, date(2025, 1, 6)),
        (EndReason.MOVED_AWAY, date(2025, 3, 1)),
        (EndReason.EXTENDED, date(2026, 8, 1)),
    ],
)
def test_other_reasons_end_an_intervention_outside_the_planned_length(oei, alice, fiona, reason, ended_on):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    period = end(family, by=alice, on=ended_on, reason=reason)

    assert (period.ended_on, period.end_reason, period.ended_by) == (ended_on, reason, alice)


def test_other_needs_details(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        end(family, by=alice, on=date(2025, 2, 1), reason=EndReason.OTHER, details="  ")
    assert "details" in refused.value.message_dict
    assert InterventionPeriod.objects.get(family=family).is_running

    period = end(family, by=alice, on=date(2025, 2, 1), reason=EndReason.OTHER, details="The mother fell ill")
    assert period.end_details == "The mother fell ill"


def test_an_unknown_reason_is_refused(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        end(family, by=alice, on=date(2025, 2, 1), reason="bored")

    assert "reason" in refused.value.message_dict
    assert InterventionPeriod.objects.get(family=family).is_running


def test_ending_ends_the_assignment_and_frees_the_partners_slot(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    other = assigned_long_ago(oei, researcher=alice, to=fiona)

    end(family, by=alice, on=date(2025, 6, 1), reason=EndReason.COMPLETED)

    assignment = Assignment.objects.get(family=family)
    assert assignment.ended_on == date(2025, 6, 1)
    assert assignment.end_reason == str(EndReason.COMPLETED.label)
    assert Assignment.objects.get(family=other).ended_on is None
    assert active_families(fiona) == 1
    assert_counts_kept()


def test_an_intervention_ends_once(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    end(family, by=alice, on=date(2025, 6, 1), reason=EndReason.COMPLETED)

    with pytest.raises(ValidationError, match="already ended"):
        end(family, by=alice, on=date(2025, 7, 1), reason=EndReason.GOALS_REACHED)

    period = InterventionPeriod.objects.get(family=family)
    assert (period.ended_on, period.end_reason) == (date(2025, 6, 1), EndReason.COMPLETED)
    assert active_families(fiona) == 0


def test_a_family_whose_intervention_ended_gets_no_new_partner(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    end(family, by=alice, on=date(2025, 6, 1), reason=EndReason.COMPLETED)

    with pytest.raises(ValidationError, match="ended on"):
        assign(family, gunnar, by=alice)

    assert active_families(gunnar) == 0
    assert not Assignment.objects.filter(family=family, ended_on__isnull=True).exists()


def test_an_intervention_cannot_end_before_a_logged_contact(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    log_contact(family, by=fiona.user, contact_date=date(2025, 2, 10))

    with pytest.raises(ValidationError, match="A contact is logged on"):
        end(family, by=alice, on=date(2025, 2, 9))
    assert InterventionPeriod.objects.get(family=family).is_running

    assert end(family, by=alice, on=date(2025, 2, 10)).ended_on == date(2025, 2, 10)


@pytest.mark.parametrize("who", ["bob", "carol", "paula", "frank", "fiona_herself"])
def test_only_a_researcher_of_the_familys_site_ends_an_intervention(request, oei, alice, fiona, who):
    user = fiona.user if who == "fiona_herself" else request.getfixturevalue(who)
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(PermissionDenied):
        end(family, by=user, on=date(2025, 2, 1))

    assert InterventionPeriod.objects.get(family=family).is_running


# --- Withdrawal ------------------------------------------------------------------------------------------------


def test_withdrawing_an_assigned_family_ends_its_intervention_on_the_withdrawal_date(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    withdraw(family, by=alice, on=date(2025, 3, 1))

    period = InterventionPeriod.objects.get(family=family)
    assert (period.ended_on, period.end_reason, period.ended_by) == (date(2025, 3, 1), EndReason.WITHDRAWN, alice)
    assignment = Assignment.objects.get(family=family)
    assert assignment.ended_on == date(2025, 3, 1)
    assert active_families(fiona) == 0
    assert_counts_kept()
    assert not selectors.is_partner_of(fiona.user, family)


def test_withdrawing_a_family_before_its_first_assignment_ends_the_intervention_on_its_first_day(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona, started_on=date(2025, 2, 3))

    withdraw(family, by=alice, on=date(2025, 1, 20))

    period = InterventionPeriod.objects.get(family=family)
    assert (period.ended_on, period.end_reason) == (date(2025, 2, 3), EndReason.WITHDRAWN)
    assert active_families(fiona) == 0


def test_withdrawing_ends_the_intervention_no_earlier_than_its_last_logged_contact(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    log_contact(family, by=fiona.user, contact_date=date(2025, 3, 10))

    withdraw(family, by=alice, on=date(2025, 3, 1))

    period = InterventionPeriod.objects.get(family=family)
    assert (period.ended_on, period.end_reason) == (date(2025, 3, 10), EndReason.WITHDRAWN)
    assert Assignment.objects.get(family=family).ended_on == date(2025, 3, 10)


def test_withdrawing_a_waiting_family_takes_it_off_the_waiting_list(oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    assert family in selectors.waiting_families(frozenset({oei.pk}))

    withdraw(family, by=alice, on=days_ago(0))

    assert Family.objects.get(pk=family.pk).status == FamilyStatus.WITHDRAWN
    assert family not in selectors.waiting_families(frozenset({oei.pk}))
    assert family not in selectors.waiting_families(None)
    assert not InterventionPeriod.objects.filter(family=family).exists()
    assert active_families(fiona) == 0


# --- The contact log -------------------------------------------------------------------------------------------


def test_the_familys_partner_logs_a_contact(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    contact = log_contact(
        family,
        by=fiona.user,
        contact_date=date(2025, 1, 8),
        duration_quarters=6,
        kind="phone_video",
        elements=[Element.COORDINATION],
        notes="  Talked about the school meeting.  ",
    )

    stored = Contact.objects.get(pk=contact.pk)
    assert (stored.family, stored.author, stored.contact_date) == (family, fiona.user, date(2025, 1, 8))
    assert (stored.duration_quarters, stored.kind, stored.elements) == (6, "phone_video", ["coordination"])
    assert stored.notes == "Talked about the school meeting."
    assert ContactDay.objects.get(family=family, day=date(2025, 1, 8)).quarters == 6


@pytest.mark.parametrize("who", ["gunnar", "alice", "frank", "carol", "paula"])
def test_only_the_familys_current_partner_logs_contacts(request, oei, alice, fiona, who):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    user = request.getfixturevalue(who)
    user = user.user if isinstance(user, PartnerProfile) else user

    with pytest.raises(PermissionDenied):
        log_contact(family, by=user, contact_date=date(2025, 1, 8))

    assert not Contact.objects.filter(family=family).exists()


def test_the_old_partner_logs_nothing_after_a_reassignment(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    assign(family, gunnar, by=alice, on=date(2025, 3, 1), reason="Closer to home")

    with pytest.raises(PermissionDenied):
        log_contact(family, by=fiona.user, contact_date=date(2025, 3, 2))

    assert log_contact(family, by=gunnar.user, contact_date=date(2025, 3, 2)).author == gunnar.user
    assert Contact.objects.filter(family=family).count() == 1


def test_a_contact_cannot_be_dated_in_the_future(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        log_contact(family, by=fiona.user, contact_date=days_ago(-1))

    assert "contact_date" in refused.value.message_dict
    assert log_contact(family, by=fiona.user, contact_date=days_ago(0)).contact_date == days_ago(0)


def test_a_contact_cannot_be_dated_before_the_family_got_its_family_partner(oei, alice, fiona):
    """The intervention starts with the first assignment: a contact before it would be counted in weeks that had no
    target. Said in the partner's words, not the trial's ("randomisation")."""
    family = randomised_long_ago(oei, researcher=alice)  # randomised on 6 January
    assign(family, fiona, by=alice, on=date(2025, 2, 3))

    with pytest.raises(ValidationError) as refused:
        log_contact(family, by=fiona.user, contact_date=date(2025, 2, 2))

    assert refused.value.message_dict == {
        "contact_date": ["The date cannot be before the family got its Family Partner (2025-02-03)."]
    }
    assert "randomis" not in messages(refused.value)
    assert not Contact.objects.filter(family=family).exists()
    assert log_contact(family, by=fiona.user, contact_date=date(2025, 2, 3)).contact_date == date(2025, 2, 3)


def test_a_correction_cannot_move_a_contact_before_the_family_got_its_family_partner(oei, alice, fiona, gunnar):
    family = randomised_long_ago(oei, researcher=alice)
    assign(family, fiona, by=alice, on=date(2025, 2, 3))
    assign(family, gunnar, by=alice, on=date(2025, 3, 3), reason="Closer to home")
    contact = log_contact(family, by=gunnar.user, contact_date=date(2025, 3, 4))

    # Before Gunnar's own assignment, but after the intervention's start: a day the family had a partner.
    assert correct(contact, by=gunnar.user, contact_date=date(2025, 2, 10))[1] is True
    with pytest.raises(ValidationError, match="before the family got its Family Partner"):
        correct(Contact.objects.get(pk=contact.pk), by=gunnar.user, contact_date=date(2025, 2, 2))

    assert Contact.objects.get(pk=contact.pk).contact_date == date(2025, 2, 10)


def test_no_contact_is_logged_after_the_intervention_ended(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    end(family, by=alice, on=date(2025, 5, 1))

    # The partner is no longer the family's partner once the intervention ended: the services refuse outright.
    with pytest.raises(PermissionDenied):
        log_contact(family, by=fiona.user, contact_date=date(2025, 5, 2))

    assert not Contact.objects.filter(family=family).exists()


def test_a_contact_dated_after_the_end_is_refused_by_the_date_rule_itself(oei, alice, fiona):
    # The date rule behind the permission: an ended period whose assignment still runs (as only a change
    # behind the services' back can leave it) still refuses a contact after the end, and accepts one on it.
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    InterventionPeriod.objects.filter(family=family).update(
        ended_on=date(2025, 5, 1), end_reason=EndReason.GOALS_REACHED, ended_by=alice
    )

    with pytest.raises(ValidationError, match="after the intervention ended"):
        log_contact(family, by=fiona.user, contact_date=date(2025, 5, 2))

    assert log_contact(family, by=fiona.user, contact_date=date(2025, 5, 1)).contact_date == date(2025, 5, 1)


@pytest.mark.parametrize(("quarters", "accepted"), [(0, False), (1, True), (48, True), (49, False), (-4, False)])
def test_a_contact_lasts_from_a_quarter_of_an_hour_to_twelve_hours(oei, alice, fiona, quarters, accepted):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    if accepted:
        assert log_contact(family, by=fiona.user, duration_quarters=quarters).duration_quarters == quarters
    else:
        with pytest.raises(ValidationError) as refused:
            log_contact(family, by=fiona.user, duration_quarters=quarters)
        assert "duration_quarters" in refused.value.message_dict
        assert not Contact.objects.filter(family=family).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "letter"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"elements": []}, "elements"),
        ({"elements": ["home_visitation", "cooking"]}, "elements"),
        ({"elements": "home_visitation"}, "elements"),
    ],
)
def test_the_kind_and_the_elements_are_the_models_own(oei, alice, fiona, overrides, field):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(ValidationError) as refused:
        log_contact(family, by=fiona.user, **overrides)

    assert field in refused.value.message_dict
    assert not Contact.objects.filter(family=family).exists()


def test_all_five_elements_and_every_kind_are_accepted(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    for kind in ("home_visit", "phone_video", "services_meeting", "accompanying", "other"):
        log_contact(family, by=fiona.user, kind=kind, elements=list(Element.values), duration_quarters=1)

    assert Contact.objects.filter(family=family).count() == 5


def test_a_family_has_at_most_24_hours_of_contacts_a_day(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    other_family = assigned_long_ago(oei, researcher=alice, to=fiona)
    day = date(2025, 2, 5)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    assert ContactDay.objects.get(family=family, day=day).quarters == 96

    with pytest.raises(ValidationError) as refused:
        log_contact(family, by=fiona.user, contact_date=day, duration_quarters=1)

    assert refused.value.message_dict["duration_quarters"] == [
        "24 hours are already logged for this family on 2025-02-05; a day has at most 24 hours."
    ]
    assert Contact.objects.filter(family=family).count() == 2
    assert ContactDay.objects.get(family=family, day=day).quarters == 96
    assert log_contact(family, by=fiona.user, contact_date=day + timedelta(days=1), duration_quarters=48)
    assert log_contact(other_family, by=fiona.user, contact_date=day, duration_quarters=48)
    assert_days_kept(family)
    assert_days_kept(other_family)


def test_the_day_cap_counts_what_is_already_logged(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    day = date(2025, 2, 5)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=40)

    with pytest.raises(ValidationError, match="22 hours are already logged"):
        log_contact(family, by=fiona.user, contact_date=day, duration_quarters=9)

    assert log_contact(family, by=fiona.user, contact_date=day, duration_quarters=8)
    assert ContactDay.objects.get(family=family, day=day).quarters == 96


def test_the_database_refuses_more_than_24_hours_a_day_behind_the_services_back(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    day = date(2025, 2, 5)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)

    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(
            family=family,
            author=fiona.user,
            contact_date=day,
            duration_quarters=1,
            kind="home_visit",
            elements=[Element.HOME_VISITATION],
            submission_token=uuid.uuid4(),
        )

    assert Contact.objects.filter(family=family).count() == 2
    assert ContactDay.objects.get(family=family, day=day).quarters == 96


def test_the_database_refuses_a_contact_of_more_than_twelve_hours_behind_the_services_back(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(
            family=family,
            author=fiona.user,
            contact_date=date(2025, 2, 5),
            duration_quarters=49,
            kind="home_visit",
            elements=[Element.HOME_VISITATION],
            submission_token=uuid.uuid4(),
        )

    assert not ContactDay.objects.filter(family=family, quarters__gt=0).exists()


def test_the_daily_totals_follow_logging_and_corrections(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    monday, tuesday = date(2025, 2, 3), date(2025, 2, 4)
    first = log_contact(family, by=fiona.user, contact_date=monday, duration_quarters=8)
    second = log_contact(family, by=fiona.user, contact_date=monday, duration_quarters=4)
    assert_days_kept(family)
    assert ContactDay.objects.get(family=family, day=monday).quarters == 12

    correct(first, by=fiona.user, contact_date=tuesday)
    assert_days_kept(family)
    assert ContactDay.objects.get(family=family, day=monday).quarters == 4
    assert ContactDay.objects.get(family=family, day=tuesday).quarters == 8

    correct(Contact.objects.get(pk=second.pk), by=fiona.user, duration_quarters=10)
    correct(Contact.objects.get(pk=first.pk), by=fiona.user, contact_date=monday, duration_quarters=2)
    assert_days_kept(family)
    assert ContactDay.objects.get(family=family, day=monday).quarters == 12
    assert ContactDay.objects.get(family=family, day=tuesday).quarters == 0


def test_the_same_form_submitted_twice_logs_one_contact(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    token = uuid.uuid4()
    data = contact_input(contact_date=date(2025, 2, 3), duration_quarters=8)

    first = services.contact_log(family=family, author=fiona.user, data=data, token=token)
    second = services.contact_log(family=family, author=fiona.user, data=data, token=token)

    assert first.pk == second.pk
    assert Contact.objects.filter(family=family).count() == 1
    assert ContactDay.objects.get(family=family, day=date(2025, 2, 3)).quarters == 8


def test_a_token_of_another_familys_form_is_refused(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    other_family = assigned_long_ago(oei, researcher=alice, to=fiona)
    token = uuid.uuid4()
    services.contact_log(family=family, author=fiona.user, data=contact_input(), token=token)

    with pytest.raises(ValidationError, match="expired"):
        services.contact_log(family=other_family, author=fiona.user, data=contact_input(), token=token)

    assert not Contact.objects.filter(family=other_family).exists()


def test_a_known_token_gives_nothing_to_someone_who_is_not_the_familys_partner(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    token = uuid.uuid4()
    services.contact_log(family=family, author=fiona.user, data=contact_input(notes="Private"), token=token)

    with pytest.raises(PermissionDenied):
        services.contact_log(family=family, author=alice, data=contact_input(), token=token)


def test_the_elements_are_kept_in_the_models_order_so_a_reordering_is_no_correction(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, elements=[Element.PARENTAL_GUIDANCE, Element.HOME_VISITATION])
    assert contact.elements == [Element.HOME_VISITATION, Element.PARENTAL_GUIDANCE]
    history_rows = contact.history.count()

    _contact, changed = correct(contact, by=fiona.user, elements=[Element.PARENTAL_GUIDANCE, Element.HOME_VISITATION])

    assert not changed
    assert contact.history.count() == history_rows


@pytest.mark.parametrize("account", ["inactive", "without_role"])
def test_it_refuses_a_partner_whose_account_cannot_log_contacts(oei, alice, fiona, account):
    if account == "inactive":
        fiona.user.is_active = False
        fiona.user.save()
    else:
        fiona.user.groups.clear()
    family = randomised_family(oei, researcher=alice)

    with pytest.raises(ValidationError, match="no active Family Partner account"):
        assign(family, PartnerProfile.objects.get(pk=fiona.pk), by=alice)

    assert not Assignment.objects.filter(family=family).exists()
    assert fiona not in selectors.assignable_partners(family)


def test_notes_are_stored_encrypted(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    secret = "Mor fortalte om vold i hjemmet"

    contact = log_contact(family, by=fiona.user, notes=secret)
    correct(contact, by=fiona.user, notes=secret + " (corrected)")

    with connection.cursor() as cursor:
        cursor.execute("SELECT notes FROM visits_contact WHERE id = %s", [contact.pk])
        (raw,) = cursor.fetchone()
        cursor.execute("SELECT notes FROM visits_historicalcontact WHERE id = %s", [contact.pk])
        raw_history = [row[0] for row in cursor.fetchall()]
    assert raw and "vold" not in raw
    assert len(raw_history) == 2
    assert all("vold" not in value for value in raw_history)
    assert Contact.objects.get(pk=contact.pk).notes == secret + " (corrected)"


# --- Corrections -----------------------------------------------------------------------------------------------


def test_the_author_corrects_a_recent_contact_without_a_reason(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, contact_date=date(2025, 2, 3), duration_quarters=8)

    _corrected, changed = correct(contact, by=fiona.user, duration_quarters=6, kind="phone_video")

    assert changed is True
    stored = Contact.objects.get(pk=contact.pk)
    assert (stored.duration_quarters, stored.kind) == (6, "phone_video")
    assert ContactDay.objects.get(family=family, day=date(2025, 2, 3)).quarters == 6


def test_only_the_author_corrects_a_contact(oei, alice, fiona, gunnar):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    assign(family, gunnar, by=alice, reason="Closer to home")

    for user in (gunnar.user, alice):
        with pytest.raises(PermissionDenied):
            correct(contact, by=user, duration_quarters=4)

    assert Contact.objects.get(pk=contact.pk).duration_quarters == 8


def test_the_author_corrects_nothing_once_the_family_is_no_longer_theirs_and_the_window_closed(
    oei, alice, fiona, gunnar
):
    """A former partner corrects their own contacts for the correction window after the handover
    (visits/tests/test_former_partner.py), then no more."""
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, contact_date=date(2025, 1, 7), duration_quarters=8)
    assign(family, gunnar, by=alice, on=date(2025, 2, 1), reason="Closer to home")

    with pytest.raises(PermissionDenied):
        correct(contact, by=fiona.user, duration_quarters=4)

    assert Contact.objects.get(pk=contact.pk).duration_quarters == 8


def test_a_correction_after_fourteen_days_needs_a_reason(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    Contact.objects.filter(pk=contact.pk).update(recorded_at=timezone.now() - timedelta(days=15))
    contact = Contact.objects.get(pk=contact.pk)

    with pytest.raises(ValidationError) as refused:
        correct(contact, by=fiona.user, duration_quarters=4, reason="  ")
    assert refused.value.message_dict["reason"] == [
        "This contact was logged more than 14 days ago: say why it is corrected."
    ]
    assert Contact.objects.get(pk=contact.pk).duration_quarters == 8

    _corrected, changed = correct(contact, by=fiona.user, duration_quarters=4, reason="Typed 2 h, was 1 h")
    assert changed is True
    assert Contact.objects.get(pk=contact.pk).duration_quarters == 4
    assert Contact.history.filter(id=contact.pk).latest("history_date").history_change_reason == "Typed 2 h, was 1 h"


def test_a_correction_within_fourteen_days_needs_no_reason(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    Contact.objects.filter(pk=contact.pk).update(recorded_at=timezone.now() - timedelta(days=13, hours=23))

    _corrected, changed = correct(Contact.objects.get(pk=contact.pk), by=fiona.user, duration_quarters=4)

    assert changed is True
    assert Contact.objects.get(pk=contact.pk).duration_quarters == 4


def test_the_free_correction_time_ends_exactly_fourteen_days_after_logging(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user)

    assert not services.correction_needs_reason(contact, now=contact.recorded_at + timedelta(days=14))
    assert services.correction_needs_reason(contact, now=contact.recorded_at + timedelta(days=14, seconds=1))


def test_the_free_correction_time_follows_the_trial_settings(oei, alice, fiona):
    trial_settings = TrialSettings.current()
    trial_settings.contact_correction_days = 3
    trial_settings.save()
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    recent = log_contact(family, by=fiona.user, duration_quarters=8)
    older = log_contact(family, by=fiona.user, duration_quarters=8)
    Contact.objects.filter(pk=recent.pk).update(recorded_at=timezone.now() - timedelta(days=2))
    Contact.objects.filter(pk=older.pk).update(recorded_at=timezone.now() - timedelta(days=4))

    assert correct(Contact.objects.get(pk=recent.pk), by=fiona.user, duration_quarters=4)[1] is True
    with pytest.raises(ValidationError, match="more than 3 days ago"):
        correct(Contact.objects.get(pk=older.pk), by=fiona.user, duration_quarters=4)

    assert Contact.objects.get(pk=older.pk).duration_quarters == 8


def test_every_correction_adds_a_history_row_with_its_reason(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    assert Contact.history.filter(id=contact.pk).count() == 1

    correct(contact, by=fiona.user, duration_quarters=6, reason="Left early")
    correct(Contact.objects.get(pk=contact.pk), by=fiona.user, notes="Met the school nurse", reason="Forgot the notes")

    rows = list(Contact.history.filter(id=contact.pk).order_by("history_date", "history_id"))
    assert [row.history_type for row in rows] == ["+", "~", "~"]
    assert [row.history_change_reason for row in rows[1:]] == ["Left early", "Forgot the notes"]
    assert [row.duration_quarters for row in rows] == [8, 6, 6]
    assert rows[-1].history_user == fiona.user


def test_a_correction_that_changes_nothing_is_not_recorded(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, duration_quarters=8, notes="Visit")
    Contact.objects.filter(pk=contact.pk).update(recorded_at=timezone.now() - timedelta(days=30))
    contact = Contact.objects.get(pk=contact.pk)

    result, changed = correct(contact, by=fiona.user, notes="  Visit  ")

    assert changed is False
    assert result.pk == contact.pk
    assert Contact.history.filter(id=contact.pk).count() == 1


def test_a_correction_obeys_the_contact_rules(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, contact_date=date(2025, 2, 3), duration_quarters=8)

    for changes in (
        {"contact_date": days_ago(-1)},
        {"contact_date": LONG_AGO_DAY - timedelta(days=1)},
        {"duration_quarters": 49},
        {"elements": []},
        {"kind": "letter"},
    ):
        with pytest.raises(ValidationError):
            correct(Contact.objects.get(pk=contact.pk), by=fiona.user, **changes)

    stored = Contact.objects.get(pk=contact.pk)
    assert (stored.contact_date, stored.duration_quarters) == (date(2025, 2, 3), 8)
    assert Contact.history.filter(id=contact.pk).count() == 1


def test_a_correction_respects_the_24_hours_of_the_day_it_lands_on(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    full_day, other_day = date(2025, 2, 3), date(2025, 2, 4)
    log_contact(family, by=fiona.user, contact_date=full_day, duration_quarters=48)
    shorter = log_contact(family, by=fiona.user, contact_date=full_day, duration_quarters=40)
    moved = log_contact(family, by=fiona.user, contact_date=other_day, duration_quarters=10)

    # Lengthening a contact counts the day without the contact's own old length: 48 + 48 = 24 hours.
    assert correct(shorter, by=fiona.user, duration_quarters=48)[1] is True
    assert ContactDay.objects.get(family=family, day=full_day).quarters == 96
    with pytest.raises(ValidationError, match="24 hours are already logged"):
        correct(moved, by=fiona.user, contact_date=full_day)

    assert Contact.objects.get(pk=moved.pk).contact_date == other_day
    assert ContactDay.objects.get(family=family, day=other_day).quarters == 10
    assert ContactDay.objects.get(family=family, day=full_day).quarters == 96
    assert_days_kept(family)


def test_a_correction_may_move_a_contact_onto_a_day_with_room(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    busy_day, other_day = date(2025, 2, 3), date(2025, 2, 4)
    log_contact(family, by=fiona.user, contact_date=busy_day, duration_quarters=48)
    log_contact(family, by=fiona.user, contact_date=busy_day, duration_quarters=38)
    moved = log_contact(family, by=fiona.user, contact_date=other_day, duration_quarters=10)

    correct(moved, by=fiona.user, contact_date=busy_day)

    assert ContactDay.objects.get(family=family, day=busy_day).quarters == 96
    assert ContactDay.objects.get(family=family, day=other_day).quarters == 0
    assert_days_kept(family)


def test_a_reassignment_made_on_a_stale_page_is_refused_instead_of_ending_a_colleagues_new_assignment(
    oei, alice, fiona, gunnar
):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)
    seen = Assignment.objects.get(family=family, ended_on__isnull=True)
    third = partner(oei, "hilde")
    # A colleague moves the family to Gunnar while alice's page still shows Fiona.
    services.family_assign(
        family=family, partner=gunnar, started_on=days_ago(0), assigned_by=alice, reason="Fiona moved", shown=seen.pk
    )

    with pytest.raises(ValidationError, match="changed while you were choosing"):
        services.family_assign(
            family=family, partner=third, started_on=days_ago(0), assigned_by=alice, reason="Fiona moved", shown=seen.pk
        )

    assert Assignment.objects.get(family=family, ended_on__isnull=True).partner == gunnar
    assert_counts_kept()


def test_a_first_assignment_made_on_a_stale_page_is_refused_when_a_colleague_assigned_meanwhile(
    oei, alice, fiona, gunnar
):
    family = randomised_family(oei, researcher=alice)
    services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice, shown=None)

    with pytest.raises(ValidationError, match="changed while you were choosing"):
        services.family_assign(family=family, partner=gunnar, started_on=days_ago(0), assigned_by=alice, shown=None)

    assert Assignment.objects.get(family=family).partner == fiona


def test_duplicate_elements_are_kept_once(oei, alice, fiona):
    family = assigned_long_ago(oei, researcher=alice, to=fiona)

    contact = log_contact(family, by=fiona.user, elements=[Element.COORDINATION, Element.COORDINATION])

    assert contact.elements == [Element.COORDINATION]


def test_the_counting_triggers_exist_after_every_migration(db):
    """A later migration that rebuilds a table on SQLite drops its triggers silently (migration 0002's note)."""
    query = {
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'visits%%'",
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'visits%%'",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(query)
        present = {name for (name,) in cursor.fetchall()}

    assert (
        present
        == {
            "postgresql": {
                "visits_assignment_counts",
                "visits_assignment_intervention_only",
                "visits_contact_counts",
                "visits_contact_void_final",
            },
            "sqlite": {
                "visits_assignment_intervention_only",
                "visits_assignment_intervention_only_update",
                "visits_assignment_inserted",
                "visits_assignment_updated",
                "visits_assignment_deleted",
                "visits_contact_inserted",
                "visits_contact_updated",
                "visits_contact_deleted",
                "visits_contact_void_final",
            },
        }[connection.vendor]
    )
