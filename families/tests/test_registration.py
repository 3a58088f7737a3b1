"""Registration tells the researcher every mistake at once: the form's, the household rows', and the trial's
rules the service checks, each linked to its field; never one mistake per submit."""

import re
import uuid
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from families import services
from families.models import Family, ReferralSource

TODAY = timezone.localdate()


def register(**changes) -> Family:
    arguments = {
        "referral_date": TODAY - timedelta(days=3),
        "referral_source": ReferralSource.CHILD_WELFARE_CASEWORKER,
        "parent_birth_years": [1990],
        "child_birth_dates": [date(2019, 3, 1)],
        "identifiers": services.Identifiers(contact_name="Kari Nordmann"),
        "token": uuid.uuid4(),
        **changes,
    }
    return services.family_register(**arguments)


def test_it_reports_every_mistake_of_a_registration_at_once(alice, oei):
    with pytest.raises(ValidationError) as refused:
        register(
            site=oei,
            registered_by=alice,
            referral_date=TODAY + timedelta(days=1),
            referral_source="a neighbour",
            parent_birth_years=[],
            child_birth_dates=[],
            identifiers=services.Identifiers(contact_name="  "),
        )

    assert set(refused.value.error_dict) == {
        "referral_date",
        "referral_source",
        "parents",
        "children",
        "contact_name",
    }
    assert not Family.objects.exists()


def test_it_reports_every_mistake_of_a_household_at_once(alice, oei):
    with pytest.raises(ValidationError) as refused:
        register(
            site=oei,
            registered_by=alice,
            parent_birth_years=[1990, TODAY.year + 1, 1850],
            child_birth_dates=[TODAY + timedelta(days=1)],
        )

    errors = refused.value.message_dict
    assert set(errors) == {"parents", "children"}
    assert errors["parents"] == ["A parent's birth year must lie between 1900 and this year."], "said once for two"
    assert errors["children"] == ["A child's birth date cannot be in the future."]


# --- The page ----------------------------------------------------------------------------------------------


def post_registration(client, site, **changes):
    page = client.get(reverse("families:register"))
    data = {
        "token": page.context["form"].initial["token"],
        "site": site.pk,
        "referral_date": (TODAY - timedelta(days=3)).isoformat(),
        "referral_source": ReferralSource.CHILD_WELFARE_CASEWORKER,
        "contact_name": "Ola Nordmann",
        "parents-TOTAL_FORMS": 2,
        "parents-INITIAL_FORMS": 0,
        "parents-0-birth_year": "",
        "parents-1-birth_year": "",
        "children-TOTAL_FORMS": 3,
        "children-INITIAL_FORMS": 0,
        "children-0-birth_date": "",
        "children-1-birth_date": "",
        "children-2-birth_date": "",
        **changes,
    }
    return client.post(reverse("families:register"), data)


def summary_links(page: str) -> dict[str, str]:
    """The error summary's links: the field each leads to → the text."""
    summary = page[page.index("data-error-summary") :]
    summary = summary[: summary.index("</div>")]
    return {
        target: re.sub(r"\s+", " ", text).strip() for target, text in re.findall(r'href="#([^"]+)">(.*?)</a>', summary)
    }


def field_tag(page: str, name: str) -> str:
    return re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', page).group(0)


def test_it_shows_every_error_of_the_registration_page_at_once_each_linked_to_its_field(client, alice, oei):
    client.force_login(alice)

    response = post_registration(
        client,
        oei,
        referral_date=(TODAY + timedelta(days=2)).isoformat(),
        contact_name="",
        phone="12",
    )

    assert response.status_code == 200
    page = response.content.decode()
    links = summary_links(page)
    assert set(links) == {
        "id_referral_date",
        "id_parents-0-birth_year",
        "id_children-0-birth_date",
        "id_contact_name",
        "id_phone",
    }, links
    assert "The date cannot be in the future." in links["id_referral_date"]
    assert "Add at least one parent." in links["id_parents-0-birth_year"]
    assert "Add at least one child." in links["id_children-0-birth_date"]
    for name in ("parents-0-birth_year", "children-0-birth_date"):
        tag = field_tag(page, name)
        assert 'aria-invalid="true"' in tag, tag
        described_by = re.search(r'aria-describedby="([^"]+)"', tag).group(1)
        assert f'id="{described_by.split()[0]}"' in page
    assert 'aria-invalid="true"' not in field_tag(page, "parents-1-birth_year")
    assert not Family.objects.exists()


def test_it_shows_the_household_rule_with_the_forms_own_errors(client, alice, oei):
    # The rows are fine and the household is not: its rule is checked with the rest, not after it.
    client.force_login(alice)

    response = post_registration(client, oei, contact_name="", **{"children-0-birth_date": "2019-03-01"})

    links = summary_links(response.content.decode())
    assert set(links) == {"id_parents-0-birth_year", "id_contact_name"}, links


def test_it_registers_once_the_mistakes_are_corrected(client, alice, oei):
    client.force_login(alice)

    response = post_registration(client, oei, **{"parents-0-birth_year": "1990", "children-0-birth_date": "2019-03-01"})

    assert response.status_code == 302
    assert Family.objects.get().parents.get().birth_year == 1990


def test_it_ties_a_birth_year_after_this_year_to_its_own_row(client, alice, oei):
    client.force_login(alice)

    response = post_registration(
        client,
        oei,
        **{
            "parents-0-birth_year": "1990",
            "parents-1-birth_year": str(TODAY.year + 1),
            "children-0-birth_date": "2019-03-01",
        },
    )

    links = summary_links(response.content.decode())
    assert list(links) == ["id_parents-1-birth_year"]
    assert "between 1900 and this year" in links["id_parents-1-birth_year"]
