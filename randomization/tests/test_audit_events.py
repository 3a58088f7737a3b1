"""What a monitor must be able to see afterwards although no record changed (trial.AuditEvent): who looked at an
unsealed list's entries or downloaded its text, and whose randomisation was refused because of the list (used up,
unsealed, stopped after a failed verification, missing or damaged), with the family and the reason. The refusal
is recorded although the randomisation's own transaction rolls back."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from families.tests.factories import family_in_state
from randomization import lists, services
from randomization.models import AllocationEntry
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from randomization.tests.tampering import trigger_off
from trial.models import AuditEvent, EventKind


def unsealed_list(oei, dina, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="Closed", requested_by=dina)
    lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=paula)
    return allocation_list


def events(kind: str) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(kind=kind).order_by("pk").values_list("user__username", "site__code", "subject")
    )


def test_it_records_every_view_and_download_of_an_unsealed_list(client, oei, dina, paula):
    unsealed_list(oei, dina, paula)

    client.force_login(dina)
    client.get(reverse("randomization:list", args=["OEI"]))
    client.get(reverse("randomization:canonical_text", args=["OEI"]))
    client.force_login(paula)
    client.get(reverse("randomization:list", args=["OEI"]))

    assert events(EventKind.UNSEALED_LIST_VIEWED) == [("dina", "OEI", "OEI"), ("paula", "OEI", "OEI")]
    assert events(EventKind.UNSEALED_LIST_DOWNLOADED) == [("dina", "OEI", "OEI")]


def test_it_records_no_view_of_a_sealed_list(client, oei, dina):
    allocation_list_for(oei, by=dina)
    client.force_login(dina)
    client.get(reverse("randomization:list", args=["OEI"]))
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("viewer", ["dina", "paula"])
def test_it_shows_who_viewed_and_downloaded_the_unsealed_list_on_its_page(client, request, oei, dina, paula, viewer):
    unsealed_list(oei, dina, paula)
    client.force_login(dina)
    client.get(reverse("randomization:canonical_text", args=["OEI"]))
    client.force_login(request.getfixturevalue(viewer))

    page = client.get(reverse("randomization:list", args=["OEI"])).content.decode()

    assert page.count("data-list-event") == 2  # the download, and this view
    assert "Unsealed allocation list downloaded" in page


def refused(family, alice) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        services.family_randomise(family=family, confirmed_site=family.site, randomised_by=alice)
    return raised.value


def refusal_reasons() -> list[tuple]:
    return list(
        AuditEvent.objects.filter(kind=EventKind.RANDOMISATION_REFUSED)
        .order_by("pk")
        .values_list("user__username", "site__code", "subject", "details__reason")
    )


def test_it_records_a_randomisation_refused_for_a_missing_list(oei, alice):
    family = ready_to_randomise(oei, by=alice)
    refused(family, alice)
    assert refusal_reasons() == [("alice", "OEI", family.study_id, "no_list")]


def test_it_records_a_randomisation_refused_for_a_used_up_list(oei, dina, alice):
    oei.expected_recruitment = 1
    oei.save()
    allocation_list_for(oei, by=dina, block_sizes=[2])
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice)
    family = ready_to_randomise(oei, by=alice)
    refused(family, alice)
    assert refusal_reasons() == [("alice", "OEI", family.study_id, "used_up")]


def test_it_records_a_randomisation_refused_for_an_unsealed_list(oei, dina, paula, alice):
    unsealed_list(oei, dina, paula)
    family = ready_to_randomise(oei, by=alice)
    refused(family, alice)
    assert refusal_reasons() == [("alice", "OEI", family.study_id, "unsealed")]


def test_it_records_a_randomisation_refused_for_a_stopped_list(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    entry = AllocationEntry.objects.get(allocation_list=allocation_list, position=4)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(pk=entry.pk).update(
            sealed_arm="intervention" if entry.sealed_arm == "control" else "control"
        )
    lists.allocation_list_verify(allocation_list=allocation_list, verified_by=dina)
    family = ready_to_randomise(oei, by=alice)
    refused(family, alice)
    assert refusal_reasons() == [("alice", "OEI", family.study_id, "stopped")]


def test_it_records_a_randomisation_refused_for_a_damaged_list(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(allocation_list=allocation_list, position=1)._raw_delete(
            AllocationEntry.objects.db
        )
    family = ready_to_randomise(oei, by=alice)
    refused(family, alice)
    assert refusal_reasons() == [("alice", "OEI", family.study_id, "damaged")]


def test_it_records_no_refusal_for_a_family_that_is_not_consented(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    refused(family_in_state("eligible", site=oei, by=alice), alice)
    assert not AuditEvent.objects.exists()
