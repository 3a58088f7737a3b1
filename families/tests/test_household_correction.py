"""A researcher corrects a mistyped household; the audit trail keeps what it was and why."""

import uuid
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from families import services
from families.models import Child, FamilyStatus, Parent
from families.selectors import family_timeline
from families.tests.factories import family_in_state, register_family, screen_family


def correct(family, by, *, parents=(1990,), children=(date(2019, 3, 1),), reason="Typo in the referral letter"):
    return services.family_correct_household(
        family=family,
        parent_birth_years=list(parents),
        child_birth_dates=list(children),
        reason=reason,
        corrected_by=by,
    )


def test_it_changes_adds_and_removes_household_rows(alice, oei):
    family = register_family(site=oei, by=alice, parent_birth_years=(1990, 1991), child_ages=(7,))
    assert correct(family, alice, parents=(1989,), children=(date(2019, 3, 1), date(2021, 6, 2)))
    assert list(Parent.objects.filter(family=family).values_list("birth_year", flat=True)) == [1989]
    assert sorted(Child.objects.filter(family=family).values_list("birth_date", flat=True)) == [
        date(2019, 3, 1),
        date(2021, 6, 2),
    ]


def test_it_keeps_what_the_household_was_and_why_in_the_timeline(alice, oei):
    family = register_family(site=oei, by=alice, parent_birth_years=(1990, 1991))
    correct(family, alice, parents=(1990,), reason="Second parent entered twice")
    events = family_timeline(family, viewer=alice)
    removed = [e for e in events if e.what == "Parent removed"]
    assert len(removed) == 1
    assert removed[0].reason == "Second parent entered twice"
    assert Parent.history.filter(family_id=family.pk, history_type="-").get().birth_year == 1991


def test_it_asks_for_a_reason(alice, oei):
    family = register_family(site=oei, by=alice)
    with pytest.raises(ValidationError) as error:
        correct(family, alice, reason="  ")
    assert "reason" in error.value.message_dict


def test_it_sends_a_screened_family_back_to_screening_when_its_household_changed(alice, oei):
    family = family_in_state("ineligible", site=oei, by=alice)
    correct(family, alice, children=(date(2020, 1, 1),))
    family.refresh_from_db()
    assert family.status == FamilyStatus.REFERRED
    with pytest.raises(ValidationError) as error:
        screen_family_without_reason(family, alice)
    assert "rescreening_reason" in error.value.message_dict


def screen_family_without_reason(family, by):
    return services.family_screen(
        family=family,
        screened_on=timezone.localdate(),
        involved_with_child_welfare=True,
        harmful_circumstances=True,
        struggle_areas=["finances", "housing"],
        screened_by=by,
        token=uuid.uuid4(),
    )


def test_it_leaves_the_status_alone_when_nothing_changed(alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    parents = list(family.parents.values_list("birth_year", flat=True))
    children = list(family.children.values_list("birth_date", flat=True))
    assert not correct(family, alice, parents=parents, children=children)
    family.refresh_from_db()
    assert family.status == FamilyStatus.ELIGIBLE


@pytest.mark.parametrize("state", ["consented", "declined", "withdrawn"])
def test_it_refuses_to_correct_the_household_once_the_family_has_answered(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    before = list(family.parents.values_list("birth_year", flat=True))
    with pytest.raises(ValidationError):
        correct(family, alice, parents=(1970,))
    assert list(family.parents.values_list("birth_year", flat=True)) == before


def test_it_corrects_through_the_page_and_shows_the_reason(client, alice, oei):
    family = screen_family(register_family(site=oei, by=alice), by=alice).family
    client.force_login(alice)
    url = reverse("families:household", args=[family.study_id])
    page = client.get(url)
    assert page.status_code == 200
    data = {
        "reason": "Child's birth date mistyped",
        "parents-TOTAL_FORMS": 3,
        "parents-INITIAL_FORMS": 1,
        "parents-0-birth_year": 1990,
        "children-TOTAL_FORMS": 4,
        "children-INITIAL_FORMS": 1,
        "children-0-birth_date": "2018-05-04",
    }
    response = client.post(url, data)
    assert response.status_code == 302
    detail = client.get(reverse("families:detail", args=[family.study_id])).content.decode()
    assert "Child&#x27;s birth date mistyped" in detail
    assert family.children.get().birth_date == date(2018, 5, 4)


def test_it_shows_the_error_when_the_household_would_have_no_child(client, alice, oei):
    family = register_family(site=oei, by=alice)
    client.force_login(alice)
    response = client.post(
        reverse("families:household", args=[family.study_id]),
        {
            "reason": "x",
            "parents-TOTAL_FORMS": 1,
            "parents-INITIAL_FORMS": 1,
            "parents-0-birth_year": 1990,
            "children-TOTAL_FORMS": 1,
            "children-INITIAL_FORMS": 1,
            "children-0-birth_date": "",
        },
    )
    assert response.status_code == 200
    assert "Add at least one child." in response.content.decode()
    assert family.children.count() == 1
