"""The randomise page summarises what makes the family randomisable (its screening and its consent), and a
randomisation ends on a printable receipt: a randomisation ID, the family, who randomised and when, the stratum
and the arm. Only those who may see the arm open it (the site's researchers and the PI); to a blinded user it
does not exist."""

import pytest
from django.urls import reverse
from django.utils import formats, timezone

from families.models import Consent, Screening
from randomization.models import Allocation, Arm
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise


@pytest.fixture
def consented(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    return ready_to_randomise(oei, by=alice)


def test_the_randomise_page_summarises_the_screening_and_the_consent(client, consented, alice):
    client.force_login(alice)
    screening = Screening.objects.filter(family=consented).latest("recorded_at")
    consent = Consent.objects.get(family=consented)

    page = client.get(reverse("randomization:randomise", args=[consented.study_id])).content.decode()

    summary = page[page.index("data-eligibility-summary") :]
    assert formats.date_format(screening.screened_on, "SHORT_DATE_FORMAT") in summary
    assert "Eligible" in summary
    assert formats.date_format(consent.decided_on, "SHORT_DATE_FORMAT") in summary
    assert consent.form_version in summary
    assert consent.obtained_by.get_full_name() in summary


def test_it_lands_on_the_receipt_after_randomising_and_again_on_a_second_submit(client, consented, alice, oei):
    client.force_login(alice)
    url = reverse("randomization:randomise", args=[consented.study_id])

    first = client.post(url, {"site": "OEI", "confirm": "on"})
    again = client.post(url, {"site": "OEI", "confirm": "on"})

    receipt_url = reverse("randomization:receipt", args=[consented.study_id])
    assert (first.status_code, first.url) == (302, receipt_url)
    assert (again.status_code, again.url) == (302, receipt_url)
    assert Allocation.objects.count() == 1


def test_the_receipt_shows_the_randomisation_id_family_who_when_stratum_and_arm(client, consented, alice, oei):
    client.force_login(alice)
    client.post(reverse("randomization:randomise", args=[consented.study_id]), {"site": "OEI", "confirm": "on"})
    allocation = Allocation.objects.get()

    page = client.get(reverse("randomization:receipt", args=[consented.study_id])).content.decode()

    assert allocation.randomisation_id == "OEI-R001"
    for shown in (
        "OEI-R001",
        consented.study_id,
        alice.get_full_name(),
        formats.date_format(timezone.localtime(allocation.randomised_at), "SHORT_DATETIME_FORMAT"),
        f"{oei.name} (OEI)",
        str(Arm(allocation.arm).label),
        "data-print",
    ):
        assert shown in page, shown


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("paula", 200), ("carol", 404), ("bob", 404), ("dina", 404)]
)
def test_only_those_who_see_the_arm_open_the_receipt(request, client, oei, dina, alice, who, status):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    client.force_login(request.getfixturevalue(who))

    assert client.get(reverse("randomization:receipt", args=[family.study_id])).status_code == status


def test_an_unblinded_assessor_has_no_receipt_either(client, oei, dina, alice, carol, paula):
    from randomization import services

    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    services.family_unblind(family=family, user=carol, reason="Serious adverse event", unblinded_by=paula)
    client.force_login(carol)

    assert client.get(reverse("randomization:receipt", args=[family.study_id])).status_code == 404


def test_a_family_not_randomised_has_no_receipt(client, consented, alice):
    client.force_login(alice)
    assert client.get(reverse("randomization:receipt", args=[consented.study_id])).status_code == 404
