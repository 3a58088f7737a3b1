"""Races the services must win: researchers registering, screening and deciding at the same moment.

Each thread has its own database connection (Django gives every thread one), so these are real
concurrent transactions on PostgreSQL; a Barrier releases the threads together.
"""

import threading
import uuid
from collections import Counter
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from families import services
from families.models import Child, Consent, Family, FamilyIdentity, FamilyStatus, Parent, ReferralSource, Screening
from families.tests.factories import days_ago, family_in_state, register_family
from trial.models import Site
from trial.roles import Role
from trial.tests.factories import UserFactory

pytestmark = pytest.mark.postgres

THREAD_TIMEOUT = 60


def run_together(count: int, work) -> tuple[list, list]:
    """Run work(i) in `count` threads released at once; return their results and their exceptions."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = [None] * count

    def thread_main(i: int) -> None:
        try:
            barrier.wait(timeout=THREAD_TIMEOUT)
            results[i] = work(i)
        except Exception as error:  # the test inspects every thread's outcome
            errors[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return results, errors


def register(site, by, token=None) -> Family:
    return services.family_register(
        site=site,
        referral_date=days_ago(30),
        referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
        parent_birth_years=[1990],
        child_birth_dates=[date(2019, 3, 1)],
        identifiers=services.Identifiers(contact_name="Kari Nordmann"),
        registered_by=by,
        token=token or uuid.uuid4(),
    )


def test_it_numbers_families_registered_at_the_same_moment_without_gaps_or_duplicates(
    transactional_db, postgres, alice, oei
):
    threads, per_thread = 8, 6

    def register_several(_i):
        return [register(oei, alice).study_id for _ in range(per_thread)]

    results, errors = run_together(threads, register_several)
    assert errors == [None] * threads
    total = threads * per_thread
    numbers = sorted(Family.objects.filter(site=oei).values_list("number", flat=True))
    assert numbers == list(range(1, total + 1))
    study_ids = [study_id for batch in results for study_id in batch]
    assert len(study_ids) == len(set(study_ids)) == total
    assert sorted(study_ids) == [f"OEI-{n:03d}" for n in range(1, total + 1)]
    assert Site.objects.get(pk=oei.pk).last_family_number == total
    assert Parent.objects.count() == Child.objects.count() == FamilyIdentity.objects.count() == total


def test_it_numbers_two_sites_independently_under_load(transactional_db, postgres, alice, bob, oei, lar):
    threads, per_thread = 8, 5

    def register_several(i):
        site, by = (oei, alice) if i % 2 == 0 else (lar, bob)
        return [register(site, by).study_id for _ in range(per_thread)]

    _results, errors = run_together(threads, register_several)
    assert errors == [None] * threads
    per_site = threads // 2 * per_thread
    for site in (oei, lar):
        numbers = sorted(Family.objects.filter(site=site).values_list("number", flat=True))
        assert numbers == list(range(1, per_site + 1))
        assert Site.objects.get(pk=site.pk).last_family_number == per_site


def test_it_registers_one_family_when_the_same_form_is_submitted_ten_times_at_once(
    transactional_db, postgres, alice, oei
):
    token = uuid.uuid4()
    results, errors = run_together(10, lambda _i: register(oei, alice, token=token))
    assert errors == [None] * 10
    assert Family.objects.count() == 1
    family = Family.objects.get()
    assert {result.pk for result in results} == {family.pk}
    assert {result.study_id for result in results} == {"OEI-001"}
    assert Parent.objects.count() == Child.objects.count() == FamilyIdentity.objects.count() == 1
    assert Site.objects.get(pk=oei.pk).last_family_number == 1


def test_it_lets_only_one_of_eight_simultaneous_first_screenings_through(transactional_db, postgres, alice, oei):
    family = register_family(site=oei, by=alice)

    def screen(_i):
        return services.family_screen(
            family=family,
            screened_on=days_ago(20),
            involved_with_child_welfare=True,
            harmful_circumstances=True,
            struggle_areas=["finances", "housing"],
            rescreening_reason="",
            screened_by=alice,
            token=uuid.uuid4(),
        )

    results, errors = run_together(8, screen)
    succeeded = [result for result in results if result is not None]
    assert len(succeeded) == 1
    refused = [error for error in errors if error is not None]
    assert len(refused) == 7
    for error in refused:
        assert isinstance(error, ValidationError), repr(error)
        assert set(error.error_dict) == {"rescreening_reason"}
    assert Screening.objects.filter(family=family).count() == 1
    assert Screening.objects.filter(family=family, rescreening_reason="").count() == 1
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.ELIGIBLE


def test_it_records_one_decision_when_consent_and_decline_arrive_at_once(transactional_db, postgres, alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)

    def decide(i):
        if i % 2 == 0:
            return services.family_record_consent(
                family=family,
                decided_on=days_ago(5),
                form_version="v1",
                obtained_by=alice,
                recorded_by=alice,
                token=uuid.uuid4(),
            )
        return services.family_record_decline(
            family=family, decided_on=days_ago(5), reason="privacy", recorded_by=alice, token=uuid.uuid4()
        )

    results, errors = run_together(8, decide)
    assert sum(result is not None for result in results) == 1
    assert Counter(type(error) for error in errors if error is not None) == {ValidationError: 7}
    decision = Consent.objects.get(family=family)
    assert Family.objects.get(pk=family.pk).status == decision.decision


def test_it_records_one_new_decision_when_researchers_answer_for_a_declined_family_at_once(
    transactional_db, postgres, alice, oei
):
    rita = UserFactory(username="rita", roles=[Role.RESEARCHER], sites=[oei])
    family = family_in_state("declined", site=oei, by=alice)
    decline = Consent.objects.get(family=family)

    def decide(i):
        # Every form was opened on the same page, for the family's decline.
        by = alice if i % 2 == 0 else rita
        if i % 2 == 0:
            return services.family_record_consent(
                family=family,
                decided_on=days_ago(2),
                form_version="v2",
                obtained_by=by,
                replaces=decline,
                new_decision_reason="Called back: they want to take part",
                recorded_by=by,
                token=uuid.uuid4(),
            )
        return services.family_record_decline(
            family=family,
            decided_on=days_ago(2),
            reason="privacy",
            replaces=decline,
            new_decision_reason="Called back: still no",
            recorded_by=by,
            token=uuid.uuid4(),
        )

    results, errors = run_together(8, decide)

    recorded = [result for result in results if result is not None]
    assert len(recorded) == 1
    refused = [error for error in errors if error is not None]
    assert len(refused) == 7 and all(isinstance(error, ValidationError) for error in refused), refused
    # Told why: the family has consented meanwhile, or declined again.
    expected = "has already consented" if recorded[0].decision == "consented" else "recorded meanwhile"
    assert all(expected in str(error) for error in refused), refused
    assert Consent.objects.filter(family=family).count() == 2
    assert Consent.objects.get(family=family, replaces=decline) == recorded[0]
    assert Family.objects.get(pk=family.pk).status == recorded[0].decision
