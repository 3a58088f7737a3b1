"""Races the follow-up rules must win on PostgreSQL, each thread on its own connection, released together.

- A baseline corrected to "refused" while a researcher randomises: the randomisation, which asks under the family's
  lock, either comes first (and the correction follows) or sees the correction and refuses; never a family
  randomised after its baseline was voided.
- Two assessors recording one assessment at once (different forms): one records, the other is told it is already
  recorded and that a correction needs a reason; ten double clicks of one form record once.
- A withdrawal and a recording at once: the recording never changes a stopped row.
"""

import threading
import time
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from families import services as family_services
from families.models import FamilyStatus
from families.services import lock_family
from families.tests.test_concurrency import run_together
from followups.models import Assessment, AssessmentStatus
from followups.tests.factories import record, site_assessor
from randomization import services as randomisation
from randomization.models import Allocation
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise

pytestmark = pytest.mark.postgres


def test_a_baseline_voided_while_randomising_stops_the_randomisation(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina, length=20)
    family = ready_to_randomise(oei, by=alice)
    baseline = Assessment.objects.get(family=family, months=0)
    assessor = site_assessor(oei)
    corrected = threading.Event()

    def correct_then_hold() -> None:
        # The correction holds the family's lock a moment after writing, so the randomisation queues behind it.
        with transaction.atomic():
            lock_family(family)
            record(
                baseline,
                by=assessor,
                status=AssessmentStatus.REFUSED,
                done_on=baseline.opens_on,
                correction_reason="Recorded for the wrong family",
            )
            corrected.set()
            time.sleep(0.3)

    def randomise() -> object:
        corrected.wait(5)
        return randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)

    _results, errors = run_together(2, lambda i: correct_then_hold() if i == 0 else randomise())

    assert errors[0] is None
    assert isinstance(errors[1], ValidationError) and "baseline" in str(errors[1])
    assert not Allocation.objects.filter(family=family).exists()
    family.refresh_from_db()
    assert family.status == FamilyStatus.CONSENTED


def test_two_assessors_recording_one_assessment_make_one_recording(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina, length=20)
    family = randomised_family(oei, researcher=alice).family
    three = Assessment.objects.get(family=family, months=3)
    assessor = site_assessor(oei)
    today = timezone.localdate()

    _results, errors = run_together(
        6,
        lambda i: record(
            three, by=assessor, status="completed" if i % 2 else "refused", done_on=today, confirm_outside_window=True
        ),
    )

    recorded = [error for error in errors if error is None]
    assert len(recorded) == 1
    assert all(
        isinstance(error, ValidationError) and "correction_reason" in error.error_dict for error in errors if error
    )
    assert three.history.exclude(status="scheduled").count() == 1


def test_ten_double_clicks_record_once(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina, length=20)
    family = randomised_family(oei, researcher=alice).family
    three = Assessment.objects.get(family=family, months=3)
    assessor = site_assessor(oei)
    token = uuid.uuid4()

    _results, errors = run_together(
        10,
        lambda i: record(three, by=assessor, done_on=timezone.localdate(), confirm_outside_window=True, token=token),
    )

    assert errors == [None] * 10
    assert three.history.filter(status="completed").count() == 1


def test_a_withdrawal_and_a_recording_at_once_never_change_a_stopped_row(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina, length=20)
    family = randomised_family(oei, researcher=alice).family
    three = Assessment.objects.get(family=family, months=3)
    assessor = site_assessor(oei)
    today = timezone.localdate()

    def withdraw():
        return family_services.family_withdraw(
            family=family,
            withdrawn_on=today,
            reason="moved_away",
            data_may_be_kept=True,
            recorded_by=alice,
            token=uuid.uuid4(),
        )

    _results, errors = run_together(
        2,
        lambda i: withdraw() if i == 0 else record(three, by=assessor, done_on=today, confirm_outside_window=True),
    )

    assert errors[0] is None
    three.refresh_from_db()
    if errors[1] is None:  # the recording came first: the withdrawal leaves a recorded row alone
        assert three.status == AssessmentStatus.COMPLETED
    else:
        assert isinstance(errors[1], ValidationError)
        assert three.status == AssessmentStatus.STOPPED
