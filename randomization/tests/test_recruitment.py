"""The recruitment page: per site, the families randomised so far against the site's expected recruitment and the
families consented and waiting to be randomised, and the trial's total against the target sample size. For the PI
and the data managers (every site), and researchers (their own sites)."""

import re
import uuid

import pytest
from django.urls import reverse

from families import services as family_services
from families.tests.factories import days_ago, family_in_state
from randomization import services
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from trial.models import TrialSettings


@pytest.fixture
def recruiting(oei, lar, dina, alice, bob, carol, paula):
    """OEI: 3 randomised (one of them withdrawn afterwards, still counted), 2 waiting; LAR: 1 randomised."""
    allocation_list_for(oei, by=dina)
    allocation_list_for(lar, by=dina)
    for _ in range(3):
        randomised_family(oei, researcher=alice)
    for _ in range(2):
        ready_to_randomise(oei, by=alice)
    family_in_state("eligible", site=oei, by=alice)
    randomised_family(lar, researcher=bob)
    settings = TrialSettings.current()
    settings.target_sample_size = 40
    settings.save()


def rows(page: str) -> dict[str, tuple[str, ...]]:
    return {
        match[0]: tuple(match[1:])
        for match in re.findall(
            r'data-recruitment="(\w+)" data-randomised="(\d+)" data-expected="(\d+)" data-waiting="(\d+)"', page
        )
    }


@pytest.mark.parametrize("viewer", ["paula", "dina"])
def test_the_pi_and_the_data_managers_see_every_site_and_the_trials_total(request, client, recruiting, viewer):
    client.force_login(request.getfixturevalue(viewer))

    page = client.get(reverse("randomization:recruitment")).content.decode()

    assert rows(page) == {
        "LAR": ("1", "15", "0"),
        "LIL": ("0", "15", "0"),  # a site of the trial from its start, with no list yet
        "OEI": ("3", "15", "2"),
        "total": ("4", "40", "2"),
    }
    assert "10.0%" in page  # 4 of the 40 families the trial needs


def test_a_researcher_sees_the_sites_they_work_at(client, recruiting, bob):
    client.force_login(bob)

    page = client.get(reverse("randomization:recruitment")).content.decode()

    assert rows(page) == {"LAR": ("1", "15", "0")}


def test_a_randomised_family_that_withdrew_still_counts(client, oei, dina, alice, paula):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    family_services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(0),
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    client.force_login(paula)

    page = client.get(reverse("randomization:recruitment")).content.decode()

    assert rows(page)["OEI"] == ("1", "15", "0")


@pytest.mark.parametrize("who", ["carol", "frank", "adam"])
def test_it_is_not_for_assessors_partners_or_the_administrator(request, client, recruiting, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("randomization:recruitment")).status_code == 403


@pytest.mark.parametrize(("who", "shown"), [("paula", True), ("dina", True), ("alice", True), ("carol", False)])
def test_the_main_menu_offers_it_to_those_who_may_open_it(request, client, recruiting, who, shown):
    client.force_login(request.getfixturevalue(who))
    page = client.get(reverse("password_change")).content.decode()
    assert (f'href="{reverse("randomization:recruitment")}"' in page) is shown


def test_randomising_moves_a_family_from_waiting_to_randomised(client, recruiting, oei, alice, paula):
    waiting = ready_to_randomise(oei, by=alice)
    services.family_randomise(family=waiting, confirmed_site=oei, randomised_by=alice)
    client.force_login(paula)

    page = client.get(reverse("randomization:recruitment")).content.decode()

    assert rows(page)["OEI"] == ("4", "15", "2")
