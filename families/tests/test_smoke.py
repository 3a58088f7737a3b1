from django.urls import reverse

from families.models import Family
from families.tests.factories import family_in_state


def test_it_shows_a_family_to_its_researcher(client, alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    client.force_login(alice)
    response = client.get(reverse("families:detail", args=[family.study_id]))
    assert response.status_code == 200
    assert b"Kari Nordmann" in response.content
    response = client.get(reverse("families:list"))
    assert family.study_id.encode() in response.content


def test_it_registers_through_the_page(client, alice, oei):
    client.force_login(alice)
    page = client.get(reverse("families:register"))
    token = page.context["form"].initial["token"]
    data = {
        "token": token,
        "site": oei.pk,
        "referral_date": "2026-01-05",
        "referral_source": "child_welfare_caseworker",
        "contact_name": "Ola Nordmann",
        "national_id_number": "",
        "phone": "",
        "address": "",
        "other_members": "",
        "parents-TOTAL_FORMS": 2,
        "parents-INITIAL_FORMS": 0,
        "parents-0-birth_year": 1988,
        "parents-1-birth_year": "",
        "children-TOTAL_FORMS": 3,
        "children-INITIAL_FORMS": 0,
        "children-0-birth_date": "2019-03-01",
        "children-1-birth_date": "",
        "children-2-birth_date": "",
    }
    response = client.post(reverse("families:register"), data)
    assert response.status_code == 302, response.context["form"].errors
    response = client.post(reverse("families:register"), data)
    assert Family.objects.count() == 1
    assert Family.objects.get().study_id == "OEI-001"
