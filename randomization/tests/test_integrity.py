"""What keeps a stored list what it was: the database refuses to change (and on PostgreSQL to delete) a list's
generations, verifications, annotations and unblindings, and a list damaged anyway (its records changed with
the triggers off) is shown as damaged, never as a server error."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from families.models import Family, FamilyStatus
from randomization import lists, sequence, services
from randomization.models import (
    Allocation,
    AllocationAnnotation,
    AllocationEntry,
    AllocationList,
    ListSegment,
    Unblinding,
    Verification,
)
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from randomization.tests.tampering import trigger_off


@pytest.fixture
def records(oei, dina, alice, carol, paula):
    """A list with a randomised family, marked in error and unblinded for carol, and a verification."""
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    services.allocation_annotate(allocation=allocation, reason="Consent withdrawn by phone", annotated_by=alice)
    services.family_unblind(family=allocation.family, user=carol, reason="Serious adverse event", unblinded_by=paula)
    lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)
    return allocation_list


RECORDS = {
    ListSegment: {"commitment": "0" * 64, "block_sizes": [2], "seed": "00" * 32},
    Verification: {"passed": False},
    AllocationAnnotation: {"reason": "Another reason"},
    Unblinding: {"reason": "Another reason"},
}


@pytest.mark.parametrize("model", RECORDS, ids=lambda model: model.__name__)
def test_the_database_refuses_to_change_a_generation_verification_annotation_or_unblinding(records, model):
    before = list(model.objects.values())
    for field, value in RECORDS[model].items():
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.update(**{field: value})
    assert list(model.objects.values()) == before


@pytest.mark.parametrize("model", RECORDS, ids=lambda model: model.__name__)
def test_the_database_refuses_to_delete_a_generation_verification_annotation_or_unblinding(postgres, records, model):
    count = model.objects.count()
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.all()._raw_delete(model.objects.db)
    assert model.objects.count() == count


def delete_generations(allocation_list: AllocationList) -> None:
    with trigger_off("randomization_listsegment"):
        ListSegment.objects.filter(allocation_list=allocation_list)._raw_delete(ListSegment.objects.db)


LIST_PAGES = ["randomization:lists", "randomization:list", "randomization:commitment"]


def page(client, name: str):
    return client.get(reverse(name) if name == "randomization:lists" else reverse(name, args=["OEI"]))


@pytest.mark.parametrize("viewer", ["dina", "paula"])
def test_it_shows_a_list_whose_generations_were_deleted_as_damaged(request, client, oei, lar, dina, alice, viewer):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation_list_for(lar, by=dina)
    randomised_family(oei, researcher=alice)
    delete_generations(allocation_list)
    client.force_login(request.getfixturevalue(viewer))

    for name in LIST_PAGES:
        response = page(client, name)
        assert response.status_code == 200, name
        assert "data-list-damaged" in response.content.decode(), name
    overview = page(client, "randomization:lists").content.decode()
    assert overview.count("data-list-damaged") == 1  # OEI's list, not LAR's


def test_it_records_a_failed_verification_of_a_list_whose_generations_were_deleted(client, oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    delete_generations(allocation_list)
    client.force_login(dina)

    response = client.post(reverse("randomization:verify", args=["OEI"]), follow=True)

    assert response.status_code == 200
    verification = allocation_list.verifications.get()
    assert not verification.passed
    assert {"kind": "generation_missing", "segment": 1} in verification.findings


def test_it_records_a_failed_verification_of_a_list_with_an_unusable_generation(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    with trigger_off("randomization_listsegment"):
        ListSegment.objects.filter(allocation_list=allocation_list).update(block_sizes=[0])

    verification = lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)

    assert {"kind": "generation_unusable", "segment": 1} in verification.findings
    assert not verification.passed


def test_it_refuses_to_randomise_from_a_list_whose_next_entry_is_missing_without_an_error_page(
    client, oei, dina, alice
):
    allocation_list = allocation_list_for(oei, by=dina)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(allocation_list=allocation_list, position=1)._raw_delete(
            AllocationEntry.objects.db
        )
    family = ready_to_randomise(oei, by=alice)
    client.force_login(alice)

    response = client.post(reverse("randomization:randomise", args=[family.study_id]), {"site": "OEI", "confirm": "on"})

    assert response.status_code == 200
    assert "damaged" in str(response.context["form"].non_field_errors())
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 0


# --- Every kind of finding, each from one tampering --------------------------------------------------------


def flipped(arm: str) -> str:
    return sequence.CONTROL if arm == sequence.INTERVENTION else sequence.INTERVENTION


def flip_unused_entry(allocation_list, allocation):
    entry = AllocationEntry.objects.get(allocation_list=allocation_list, position=allocation_list.length)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(pk=entry.pk).update(sealed_arm=flipped(entry.sealed_arm))
    return [{"kind": "entry_differs", "position": allocation_list.length}]


def delete_unused_entry(allocation_list, allocation):
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(allocation_list=allocation_list, position=5)._raw_delete(
            AllocationEntry.objects.db
        )
    return [{"kind": "entry_missing", "position": 5}]


def add_an_entry(allocation_list, allocation):
    AllocationEntry.objects.create(
        allocation_list=allocation_list, position=allocation_list.length + 1, sealed_arm=sequence.CONTROL
    )
    return [{"kind": "entry_extra", "position": allocation_list.length + 1}]


def lengthen_the_list(allocation_list, allocation):
    AllocationList.objects.filter(pk=allocation_list.pk).update(length=allocation_list.length + 2)
    return [{"kind": "length_differs", "stored": allocation_list.length + 2, "expected": allocation_list.length}]


def change_a_generations_commitment(allocation_list, allocation):
    with trigger_off("randomization_listsegment"):
        ListSegment.objects.filter(allocation_list=allocation_list).update(commitment="0" * 64)
    return [{"kind": "segment_commitment_differs", "segment": 1}, {"kind": "list_commitment_differs"}]


def change_the_lists_commitment(allocation_list, allocation):
    AllocationList.objects.filter(pk=allocation_list.pk).update(commitment="0" * 64)
    return [{"kind": "list_commitment_differs"}]


def change_an_allocations_arm(allocation_list, allocation):
    with trigger_off("randomization_allocation"):
        Allocation.objects.filter(pk=allocation.pk).update(arm=flipped(allocation.arm))
    return [{"kind": "allocation_differs", "position": allocation.position}]


def change_the_count_of_used_entries(allocation_list, allocation):
    AllocationList.objects.filter(pk=allocation_list.pk).update(used=3)
    return [{"kind": "used_differs", "stored": 3, "expected": 1}]


@pytest.mark.parametrize(
    "tamper",
    [
        flip_unused_entry,
        delete_unused_entry,
        add_an_entry,
        lengthen_the_list,
        change_a_generations_commitment,
        change_the_lists_commitment,
        change_an_allocations_arm,
        change_the_count_of_used_entries,
    ],
    ids=lambda tamper: tamper.__name__,
)
def test_verification_finds_each_kind_of_tampering_and_names_it(oei, dina, alice, tamper):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    assert lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina).passed

    expected = tamper(AllocationList.objects.get(pk=allocation_list.pk), allocation)
    verification = lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)

    assert not verification.passed
    assert verification.findings == expected
    texts = [lists.finding_text(finding) for finding in verification.findings]
    assert "Unknown finding." not in texts
    assert not any(word in text.lower() for text in texts for word in (sequence.INTERVENTION, sequence.CONTROL))


def test_the_immutability_triggers_exist_after_every_migration(db):
    tables = [
        "randomization_allocationentry",
        "randomization_allocation",
        "randomization_listsegment",
        "randomization_verification",
        "randomization_allocationannotation",
        "randomization_unblinding",
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'randomization%%'")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'randomization%%'")
        triggers = {name for (name,) in cursor.fetchall()}
    assert {f"{table}_immutable" for table in tables} <= triggers
