"""Races the randomisation must win on PostgreSQL: researchers randomising at the same moment, a double
click, two data managers generating one site's list, colleagues annotating one mistake.

Each thread has its own database connection; a Barrier releases the threads together.
"""

import threading
import time
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from families.models import Family, FamilyStatus
from families.tests.test_concurrency import run_together
from notifications.models import Message
from randomization import lists, services
from randomization.kinds import LIST_STOPPED
from randomization.models import (
    Allocation,
    AllocationAnnotation,
    AllocationEntry,
    AllocationList,
    ListSegment,
    ListSuspension,
)
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from randomization.tests.tampering import trigger_off
from trial.roles import Role
from trial.tests.factories import UserFactory

pytestmark = pytest.mark.postgres


def test_it_gives_twelve_simultaneous_randomisations_the_first_twelve_entries_in_order(
    transactional_db, postgres, oei, dina, alice
):
    # Long enough that no low-stock alert is queued from the threads.
    allocation_list = allocation_list_for(oei, by=dina, length=40)
    families = [ready_to_randomise(oei, by=alice) for _ in range(12)]

    results, errors = run_together(
        12, lambda i: services.family_randomise(family=families[i], confirmed_site=oei, randomised_by=alice)
    )

    assert errors == [None] * 12
    assert all(result.created for result in results)
    allocations = list(Allocation.objects.select_related("entry").order_by("randomised_at", "pk"))
    assert [allocation.position for allocation in allocations] == list(range(1, 13))
    assert sorted(result.allocation.position for result in results) == list(range(1, 13))
    assert len({allocation.entry_id for allocation in allocations}) == 12
    assert {allocation.family_id for allocation in allocations} == {family.pk for family in families}
    for allocation in allocations:
        assert allocation.entry.position == allocation.position
        assert allocation.arm == allocation.entry.sealed_arm
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 12
    assert set(Family.objects.values_list("status", flat=True)) == {FamilyStatus.RANDOMISED}
    assert lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina).passed


def test_it_randomises_a_family_once_when_twenty_requests_arrive_at_once(transactional_db, postgres, oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)

    results, errors = run_together(
        20, lambda _i: services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
    )

    assert errors == [None] * 20
    allocation = Allocation.objects.get()
    assert allocation.family_id == family.pk
    assert allocation.position == 1
    assert {result.allocation.pk for result in results} == {allocation.pk}
    assert Counter(result.created for result in results) == {True: 1, False: 19}
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 1


def test_it_allocates_once_when_twenty_browsers_post_the_randomise_form_at_once(
    transactional_db, postgres, oei, dina, alice
):
    """The same race through the page: twenty POSTs of the confirmation form, each from its own client."""
    from django.test import Client

    allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)
    url = f"/families/{family.study_id}/randomise/"
    clients = []
    for _ in range(20):
        client = Client()
        client.force_login(alice)
        clients.append(client)

    responses, errors = run_together(20, lambda i: clients[i].post(url, {"site": oei.code, "confirm": "on"}))

    assert errors == [None] * 20
    assert [response.status_code for response in responses] == [302] * 20
    assert {response.url for response in responses} == {f"/families/{family.study_id}/randomisation-receipt/"}
    assert Allocation.objects.filter(family=family).count() == 1
    assert AllocationList.objects.get(site=oei).used == 1


def test_it_keeps_one_list_when_two_data_managers_generate_for_a_site_at_once(transactional_db, postgres, oei, dina):
    managers = [dina, UserFactory(username="dmitri", roles=[Role.DATA_MANAGER])]

    results, errors = run_together(2, lambda i: allocation_list_for(oei, by=managers[i]))

    assert sum(result is not None for result in results) == 1
    (refused,) = [error for error in errors if error is not None]
    assert isinstance(refused, ValidationError), repr(refused)
    assert set(refused.error_dict) == {"site"}
    allocation_list = AllocationList.objects.get()
    (winner,) = [result for result in results if result is not None]
    assert allocation_list.pk == winner.pk
    assert ListSegment.objects.count() == 1
    assert AllocationEntry.objects.count() == allocation_list.length
    assert lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina).passed


def test_it_annotates_a_mistake_once_when_eight_colleagues_do_it_at_once(transactional_db, postgres, oei, dina, alice):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)

    results, errors = run_together(
        8,
        lambda i: services.allocation_annotate(
            allocation=allocation, reason=f"Randomised in error ({i})", annotated_by=alice
        ),
    )

    assert sum(result is not None for result in results) == 1
    assert Counter(type(error) for error in errors if error is not None) == {ValidationError: 7}
    annotation = AllocationAnnotation.objects.get()
    assert annotation.allocation_id == allocation.pk
    assert Allocation.objects.get().arm == allocation.arm


def wait_until_transactions_wait_for_a_lock(count: int) -> None:
    """Poll until `count` other sessions of this database wait for a lock (no time limit asserted)."""
    with connection.cursor() as cursor:
        for _ in range(1200):
            # Within a transaction, PostgreSQL answers from a snapshot of the statistics unless it is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"{count} randomisations did not come to wait for the list's lock")


def test_it_gives_families_waiting_while_the_list_grows_its_last_entry_and_the_first_new_one(
    transactional_db, postgres, eager_celery, oei, dina, alice
):
    # the low-stock alert is sent, not queued
    oei.expected_recruitment = 1
    oei.save()
    allocation_list = allocation_list_for(oei, by=dina, block_sizes=[2])
    randomised_family(oei, researcher=alice)
    waiting = [ready_to_randomise(oei, by=alice) for _ in range(2)]
    extended = threading.Event()

    def extend_or_randomise(i):
        if i == 0:
            # The extension keeps the list locked until both randomisations queue behind it: their
            # statements began before the new entries existed, and one of them gets the first new entry.
            with transaction.atomic():
                lists.allocation_list_extend(
                    allocation_list=allocation_list,
                    additional=2,
                    reason="More",
                    extended_by=dina,
                    block_sizes=[2],
                    design_reason="Pairs",
                )
                extended.set()
                wait_until_transactions_wait_for_a_lock(2)
            return None
        assert extended.wait(timeout=60)
        return services.family_randomise(family=waiting[i - 1], confirmed_site=oei, randomised_by=alice)

    results, errors = run_together(3, extend_or_randomise)

    assert errors == [None, None, None]
    allocations = list(Allocation.objects.select_related("entry").filter(family__in=waiting))
    assert sorted(allocation.position for allocation in allocations) == [2, 3]
    assert {result.allocation.pk for result in results[1:]} == {allocation.pk for allocation in allocations}
    for allocation in allocations:
        assert allocation.entry.position == allocation.position
        assert allocation.arm == allocation.entry.sealed_arm
    allocation_list.refresh_from_db()
    assert (allocation_list.length, allocation_list.used) == (4, 3)
    assert lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina).passed


def test_it_randomises_a_family_that_arrives_while_a_used_up_list_is_being_extended(
    transactional_db, postgres, eager_celery, oei, dina, alice
):
    # the alerts are sent, not queued
    oei.expected_recruitment = 1
    oei.save()
    allocation_list = allocation_list_for(oei, by=dina, block_sizes=[2])
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice)
    waiting = ready_to_randomise(oei, by=alice)
    extended = threading.Event()

    def extend_or_randomise(i):
        if i == 0:
            with transaction.atomic():
                lists.allocation_list_extend(
                    allocation_list=allocation_list,
                    additional=2,
                    reason="More",
                    extended_by=dina,
                    block_sizes=[2],
                    design_reason="Pairs",
                )
                extended.set()
                wait_until_transactions_wait_for_a_lock(1)
            return None
        assert extended.wait(timeout=60)
        return services.family_randomise(family=waiting, confirmed_site=oei, randomised_by=alice)

    results, errors = run_together(2, extend_or_randomise)

    # Not "used up": the family waits for the extension and gets its first entry, and no stale
    # "used up" alert is left claimed on a list that has entries again.
    assert errors == [None, None]
    assert results[1].allocation.position == 3
    allocation_list.refresh_from_db()
    assert (allocation_list.length, allocation_list.used) == (4, 3)
    assert allocation_list.exhausted_alert_sent_at is None


def test_it_finds_nothing_wrong_verifying_a_list_while_researchers_randomise_from_it(
    transactional_db, postgres, oei, dina, alice
):
    """Verification reads the entries, the allocations and the count of used entries under the list's lock: a
    randomisation committed between those reads would look like a skipped entry and stop the list for nothing."""
    # A long list: recomputing it takes a while, and randomisations commit meanwhile.
    allocation_list = allocation_list_for(oei, by=dina, length=1000)
    families = [ready_to_randomise(oei, by=alice) for _ in range(10)]

    def randomise_or_verify(i):
        if i % 2:
            return lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)
        return services.family_randomise(family=families[i // 2], confirmed_site=oei, randomised_by=alice)

    results, errors = run_together(20, randomise_or_verify)

    assert errors == [None] * 20
    verifications = results[1::2]
    assert [verification.findings for verification in verifications] == [[]] * 10
    assert not ListSuspension.objects.exists()
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 10


def test_it_refuses_a_randomisation_that_waited_for_the_list_while_a_verification_stopped_it(
    transactional_db, postgres, eager_celery, oei, dina, alice
):
    # the data managers' alert is sent, not queued
    allocation_list = allocation_list_for(oei, by=dina)
    entry = AllocationEntry.objects.get(allocation_list=allocation_list, position=5)
    with trigger_off("randomization_allocationentry"):
        flipped = "control" if entry.sealed_arm == "intervention" else "intervention"
        AllocationEntry.objects.filter(pk=entry.pk).update(sealed_arm=flipped)
    family = ready_to_randomise(oei, by=alice)
    verified = threading.Event()

    def verify_or_randomise(i):
        if i == 0:
            # The failing verification keeps the list locked until the randomisation queues behind it.
            with transaction.atomic():
                verification = lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)
                verified.set()
                wait_until_transactions_wait_for_a_lock(1)
            return verification
        assert verified.wait(timeout=60)
        return services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)

    results, errors = run_together(2, verify_or_randomise)

    assert not results[0].passed and errors[0] is None
    assert isinstance(errors[1], ValidationError), repr(errors[1])
    assert "failed verification" in errors[1].messages[0]
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 0
    # The stop's message to the data manager was written with the stop, once.
    assert list(Message.objects.filter(kind=LIST_STOPPED).values_list("recipient", flat=True)) == [dina.pk]
