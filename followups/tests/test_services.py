"""The follow-up rules, one test per rule, and the database constraints hit directly."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from families.models import Family, FamilyStatus
from families.tests.factories import family_in_state
from followups import services
from followups.models import Assessment, AssessmentStatus, BlindingGuess, LostToFollowUp, StopReason
from followups.tests.factories import record, record_baseline, site_assessor
from randomization import services as randomisation
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from trial.dates import add_months
from trial.models import AuditEvent, EventKind
from trial.services import trial_settings_change


@pytest.fixture
def listed(oei, dina):
    return allocation_list_for(oei, by=dina, length=40)


@pytest.fixture
def family(listed, oei, alice):
    return randomised_family(oei, researcher=alice).family


def _today():
    return timezone.localdate()


def _point(family, months) -> Assessment:
    return Assessment.objects.get(family=family, months=months)


# --- The baseline rule ------------------------------------------------------------------------------------------


def test_it_refuses_to_randomise_before_the_baseline_is_recorded(listed, oei, alice):
    consented = family_in_state("consented", site=oei, by=alice)
    with pytest.raises(ValidationError, match="baseline"):
        randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice)
    assert Family.objects.get(pk=consented.pk).status == FamilyStatus.CONSENTED
    assert not Assessment.objects.filter(family=consented, months=3).exists()
    # A monitor sees the refusal, like a refusal by the list.
    refusal = AuditEvent.objects.get(kind=EventKind.RANDOMISATION_REFUSED)
    assert (refusal.user, refusal.subject, refusal.details["reason"]) == (alice, consented.study_id, "not_ready")


def test_it_refuses_to_randomise_after_a_missed_baseline(listed, oei, alice):
    consented = family_in_state("consented", site=oei, by=alice)
    record_baseline(consented, status=AssessmentStatus.MISSED)
    with pytest.raises(ValidationError, match="baseline"):
        randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice)


def test_it_randomises_after_a_partly_completed_baseline(listed, oei, alice):
    consented = family_in_state("consented", site=oei, by=alice)
    record_baseline(consented, status=AssessmentStatus.PARTLY)
    assert randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice).created


def test_it_randomises_without_a_baseline_when_the_setting_is_off(listed, oei, alice, dina):
    trial_settings_change(changes={"baseline_before_randomisation": False}, reason="Test", changed_by=dina)
    consented = family_in_state("consented", site=oei, by=alice)
    result = randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice)
    assert result.created
    baseline = _point(consented, 0)
    # The baseline not recorded closes on the randomisation's day: from then on it is late.
    assert baseline.status == AssessmentStatus.SCHEDULED
    assert baseline.closes_on == _today()


def test_it_refuses_once_a_correction_turned_the_baseline_into_missed(listed, oei, alice):
    consented = ready_to_randomise(oei, by=alice)
    record(
        _point(consented, 0),
        by=site_assessor(oei),
        status=AssessmentStatus.MISSED,
        done_on=_today(),
        reason="not_reached",
        correction_reason="It was another family's visit.",
    )
    with pytest.raises(ValidationError, match="baseline"):
        randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice)


# --- The schedule -----------------------------------------------------------------------------------------------


def test_it_schedules_the_follow_ups_from_the_randomisation_in_calendar_months(family):
    points = {a.months: a for a in Assessment.objects.filter(family=family)}
    assert sorted(points) == [0, 3, 6, 12, 18]
    today = _today()
    three = points[3]
    assert three.opens_on == three.target_on - timedelta(days=14)
    assert three.closes_on == three.target_on + timedelta(days=28)
    six = points[6]
    assert (six.target_on - six.opens_on).days == 30 and (six.closes_on - six.target_on).days == 30
    assert points[12].target_on == add_months(today, 12)
    assert points[18].target_on == add_months(today, 18)


def test_a_settings_change_moves_the_windows_not_yet_recorded_and_keeps_recorded_ones(family, carol, dina):
    done = record(_point(family, 3), by=carol, done_on=_today(), confirm_outside_window=True)
    trial_settings_change(
        changes={"later_window_days_before": 10, "assessment_window_days_before": 20},
        reason="Protocol v2",
        changed_by=dina,
    )
    six = _point(family, 6)
    assert (six.target_on - six.opens_on).days == 10
    three = _point(family, 3)
    assert (three.opens_on, three.status) == (done.opens_on, AssessmentStatus.COMPLETED)
    assert six.history.first().history_change_reason


def test_a_new_time_point_is_added_and_a_removed_one_stopped(family, dina):
    trial_settings_change(changes={"follow_up_months": [3, 6, 9, 12]}, reason="Protocol v2", changed_by=dina)
    points = {a.months: a for a in Assessment.objects.filter(family=family)}
    assert sorted(points) == [0, 3, 6, 9, 12, 18]
    assert points[9].status == AssessmentStatus.SCHEDULED
    assert points[18].status == AssessmentStatus.STOPPED
    assert points[18].stop_reason == StopReason.SCHEDULE_CHANGED


def test_withdrawal_stops_the_schedule_from_its_date(family, alice):
    from families import services as family_services

    family_services.family_withdraw(
        family=family,
        withdrawn_on=_today(),
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    statuses = {a.months: a.status for a in Assessment.objects.filter(family=family)}
    assert statuses == {0: "completed", 3: "stopped", 6: "stopped", 12: "stopped", 18: "stopped"}


# --- Recording ----------------------------------------------------------------------------------------------------


def test_only_an_assessor_of_the_familys_site_records(family, alice, paula, bob, lar):
    other_site = site_assessor(lar)
    for user in (alice, paula, bob, other_site):
        with pytest.raises(PermissionDenied):
            record(_point(family, 3), by=user)


def test_it_records_a_completed_follow_up_with_the_guess_kept_apart(family, carol):
    three = _point(family, 3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("followups.services.today", lambda *a: three.target_on)
        patch.setattr("followups.selectors.today", lambda *a: three.target_on)
        recorded = record(three, by=carol, done_on=three.target_on, arm_guess="control")
    assert recorded.status == AssessmentStatus.COMPLETED
    assert not recorded.outside_window
    assert BlindingGuess.objects.get(assessment=recorded).guess == "control"
    assert not hasattr(Assessment, "arm_guess")


def test_a_follow_up_needs_the_arm_guess(family, carol):
    with pytest.raises(ValidationError) as refused:
        record(_point(family, 3), by=carol, done_on=_today(), arm_guess="", confirm_outside_window=True)
    assert "arm_guess" in refused.value.error_dict


def test_a_date_outside_the_window_needs_a_confirmation_and_is_flagged(family, carol):
    three = _point(family, 3)
    with pytest.raises(ValidationError) as refused:
        record(three, by=carol, done_on=_today())
    assert "confirm_outside_window" in refused.value.error_dict
    assert _point(family, 3).status == AssessmentStatus.SCHEDULED
    recorded = record(three, by=carol, done_on=_today(), confirm_outside_window=True)
    assert recorded.outside_window


def test_no_date_in_the_future_nor_before_the_randomisation(family, carol):
    three = _point(family, 3)
    for day in (_today() + timedelta(days=1), _today() - timedelta(days=1)):
        with pytest.raises(ValidationError) as refused:
            record(three, by=carol, done_on=day, confirm_outside_window=True)
        assert "done_on" in refused.value.error_dict


def test_no_baseline_before_the_consent(listed, oei, alice):
    consented = family_in_state("consented", site=oei, by=alice)
    baseline = _point(consented, 0)
    with pytest.raises(ValidationError) as refused:
        record_baseline(consented, on=baseline.opens_on - timedelta(days=1))
    assert "done_on" in refused.value.error_dict


def test_partly_needs_details_and_missed_a_reason(family, carol):
    with pytest.raises(ValidationError) as refused:
        record(_point(family, 3), by=carol, status="partly", done_on=_today(), confirm_outside_window=True)
    assert "details" in refused.value.error_dict
    with pytest.raises(ValidationError) as refused:
        record(_point(family, 3), by=carol, status="missed", done_on=_today())
    assert "reason" in refused.value.error_dict
    missed = record(_point(family, 3), by=carol, status="missed", done_on=_today(), reason="not_reached")
    assert (missed.status, missed.mode, missed.questionnaires) == ("missed", "", [])


def test_a_resubmitted_form_records_once(family, carol):
    token = uuid.uuid4()
    three = _point(family, 3)
    first = record(three, by=carol, done_on=_today(), confirm_outside_window=True, token=token)
    again = record(three, by=carol, done_on=_today(), confirm_outside_window=True, token=token)
    assert first.pk == again.pk
    assert three.history.filter(status="completed").count() == 1


def test_a_correction_needs_a_reason_and_keeps_the_history(family, carol):
    three = record(_point(family, 3), by=carol, done_on=_today(), confirm_outside_window=True)
    with pytest.raises(ValidationError) as refused:
        record(three, by=carol, status="refused", done_on=_today())
    assert "correction_reason" in refused.value.error_dict
    corrected = record(three, by=carol, status="refused", done_on=_today(), correction_reason="Wrong family")
    assert corrected.status == AssessmentStatus.REFUSED
    history = list(three.history.order_by("history_date").values_list("status", "history_change_reason"))
    assert history[-2:] == [("completed", None), ("refused", "Wrong family")]


def test_a_stopped_assessment_is_final(family, carol, alice):
    services.family_lose_to_follow_up(
        family=family, lost_on=_today(), reason="moved", details="", recorded_by=carol, token=uuid.uuid4()
    )
    with pytest.raises(ValidationError, match="stopped"):
        record(_point(family, 3), by=carol, done_on=_today(), confirm_outside_window=True)


# --- Booking ------------------------------------------------------------------------------------------------------


def test_an_assessor_books_and_clears_a_date(family, carol):
    three = _point(family, 3)
    booked = services.assessment_book(assessment=three, booked_on=_today() + timedelta(days=3), booked_by=carol)
    assert booked.booked_on == _today() + timedelta(days=3)
    cleared = services.assessment_book(assessment=three, booked_on=None, booked_by=carol)
    assert cleared.booked_on is None


def test_a_booking_is_never_in_the_past_nor_of_a_recorded_assessment(family, carol, alice):
    three = _point(family, 3)
    with pytest.raises(ValidationError):
        services.assessment_book(assessment=three, booked_on=_today() - timedelta(days=1), booked_by=carol)
    with pytest.raises(PermissionDenied):
        services.assessment_book(assessment=three, booked_on=_today(), booked_by=alice)
    record(three, by=carol, done_on=_today(), confirm_outside_window=True)
    with pytest.raises(ValidationError):
        services.assessment_book(assessment=three, booked_on=_today(), booked_by=carol)


# --- Lost to follow-up --------------------------------------------------------------------------------------------


def test_lost_to_follow_up_stops_the_rest_of_the_schedule_once(family, carol):
    token = uuid.uuid4()
    lost = services.family_lose_to_follow_up(
        family=family, lost_on=_today(), reason="not_reached", details="", recorded_by=carol, token=token
    )
    again = services.family_lose_to_follow_up(
        family=family, lost_on=_today(), reason="not_reached", details="", recorded_by=carol, token=token
    )
    assert lost.pk == again.pk
    statuses = {a.months: (a.status, a.stop_reason) for a in Assessment.objects.filter(family=family)}
    assert statuses[0] == ("completed", "")
    assert all(statuses[m] == ("stopped", "lost") for m in (3, 6, 12, 18))
    with pytest.raises(ValidationError, match="already"):
        services.family_lose_to_follow_up(
            family=family, lost_on=_today(), reason="moved", details="", recorded_by=carol, token=uuid.uuid4()
        )
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.RANDOMISED


def test_lost_to_follow_up_is_for_randomised_families_and_needs_details_for_other(listed, oei, alice, carol):
    consented = ready_to_randomise(oei, by=alice)
    with pytest.raises(ValidationError, match="randomised"):
        services.family_lose_to_follow_up(
            family=consented, lost_on=_today(), reason="moved", details="", recorded_by=carol, token=uuid.uuid4()
        )
    family = randomisation.family_randomise(family=consented, confirmed_site=oei, randomised_by=alice).allocation.family
    with pytest.raises(ValidationError) as refused:
        services.family_lose_to_follow_up(
            family=family, lost_on=_today(), reason="other", details=" ", recorded_by=carol, token=uuid.uuid4()
        )
    assert "details" in refused.value.error_dict
    assert not LostToFollowUp.objects.exists()


# --- The database's own rules -------------------------------------------------------------------------------------


def _refused_by_database(**changes) -> None:
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Assessment.objects.filter(pk=changes.pop("pk")).update(**changes)


def test_the_database_keeps_one_row_per_family_and_time_point(family):
    three = _point(family, 3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assessment.objects.create(
            family=family, months=3, opens_on=three.opens_on, target_on=three.target_on, closes_on=three.closes_on
        )


def test_the_database_wants_a_date_for_every_recorded_outcome(family):
    three = _point(family, 3)
    _refused_by_database(pk=three.pk, status="completed", mode="phone")
    _refused_by_database(pk=three.pk, status="refused")
    _refused_by_database(pk=three.pk, status="missed", done_on=_today())  # and a reason
    _refused_by_database(pk=three.pk, status="completed", done_on=_today())  # and a mode
    _refused_by_database(pk=three.pk, status="stopped")  # and its date and reason
    _refused_by_database(pk=three.pk, done_on=_today())  # a date, but nothing recorded


def test_the_database_keeps_a_stopped_row_as_it_is(family, carol):
    services.family_lose_to_follow_up(
        family=family, lost_on=_today(), reason="moved", details="", recorded_by=carol, token=uuid.uuid4()
    )
    three = _point(family, 3)
    _refused_by_database(pk=three.pk, status="scheduled", stopped_on=None, stop_reason="")
    _refused_by_database(pk=three.pk, booked_on=_today())
    if connection.vendor == "postgresql":
        # SQLite refuses updates only: the test runner empties its tables with DELETE (migration 0003).
        with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
            Assessment.objects.filter(pk=three.pk).delete()
    assert _point(family, 3).status == AssessmentStatus.STOPPED


def test_the_schedule_made_at_randomisation_names_no_randomiser(family):
    # A blinded viewer must not learn who randomised (docs/trial-rules.md): the rows are the system's.
    for assessment in Assessment.objects.filter(family=family).exclude(months=0):
        assert assessment.history.earliest("history_date").history_user is None
