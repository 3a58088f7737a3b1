"""Emergency unblinding and "randomised in error" are confirmed on a page of their own: after the form, a page
names the family, the assessor (unblinding) and exactly what will happen, with Confirm and Back; nothing is
written before the confirmation."""

import pytest
from django.urls import reverse

from randomization.models import AllocationAnnotation, Unblinding
from randomization.tests.factories import allocation_list_for, randomised_family

REASON = "Serious adverse event reported by the municipality"


@pytest.fixture
def allocation(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    return randomised_family(oei, researcher=alice)


def unblind_url(allocation) -> str:
    return reverse("randomization:unblind", args=[allocation.family.study_id])


def annotate_url(allocation) -> str:
    return reverse("randomization:annotate", args=[allocation.family.study_id])


def test_the_unblinding_form_leads_to_a_confirmation_that_names_the_family_and_the_assessor(
    client, allocation, paula, carol
):
    client.force_login(paula)

    response = client.post(unblind_url(allocation), {"user": carol.pk, "reason": REASON})

    assert response.status_code == 200
    page = response.content.decode()
    assert "data-confirmation" in page
    assert allocation.family.study_id in page
    assert carol.get_full_name() in page
    assert REASON in page
    assert "The data managers are told by e-mail" in page
    assert not Unblinding.objects.exists()


def test_it_unblinds_only_once_confirmed(client, allocation, paula, carol):
    client.force_login(paula)

    response = client.post(unblind_url(allocation), {"user": carol.pk, "reason": REASON, "confirmed": "yes"})

    assert response.status_code == 302
    unblinding = Unblinding.objects.get()
    assert (unblinding.user, unblinding.reason) == (carol, REASON)


def test_back_from_the_unblinding_confirmation_keeps_what_was_typed_and_writes_nothing(
    client, allocation, paula, carol
):
    client.force_login(paula)

    response = client.post(unblind_url(allocation), {"user": carol.pk, "reason": REASON, "back": "1"})

    assert response.status_code == 200
    assert "data-confirmation" not in response.content.decode()
    assert response.context["form"]["reason"].value() == REASON
    assert not response.context["form"].errors
    assert not Unblinding.objects.exists()


def test_a_confirmation_with_bad_values_goes_back_to_the_form_with_the_error(client, allocation, paula, carol):
    client.force_login(paula)

    response = client.post(unblind_url(allocation), {"user": carol.pk, "reason": " ", "confirmed": "yes"})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert not Unblinding.objects.exists()


def test_the_randomised_in_error_form_leads_to_a_confirmation_that_says_the_family_stays_in_its_arm(
    client, allocation, alice
):
    client.force_login(alice)

    response = client.post(annotate_url(allocation), {"reason": "Consent withdrawn by phone the day before"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "data-confirmation" in page
    assert allocation.family.study_id in page
    assert "stays in its arm" in page
    assert "Consent withdrawn by phone the day before" in page
    assert not AllocationAnnotation.objects.exists()


def test_it_marks_a_randomisation_in_error_only_once_confirmed(client, allocation, alice):
    client.force_login(alice)

    back = client.post(annotate_url(allocation), {"reason": "Consent withdrawn", "back": "1"})
    assert back.status_code == 200 and not AllocationAnnotation.objects.exists()
    response = client.post(annotate_url(allocation), {"reason": "Consent withdrawn", "confirmed": "yes"})

    assert response.status_code == 302
    assert AllocationAnnotation.objects.get().reason == "Consent withdrawn"
