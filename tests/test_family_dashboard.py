"""The family list as the researchers' record status dashboard: counts by status (each a filter), sorting, the next
step for each family, and the arm's column and filter for those who may see arms, and only for them.

The arm's column and filter come from the randomisation app, the "Assign a Family Partner" step from the Family
Partner app (families.family_list): so these tests span the apps."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from families.models import Family, FamilyStatus
from families.tests.factories import family_in_state, register_family
from randomization.models import Arm
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits.tests.factories import assigned_family, partner, randomised_family


@pytest.fixture
def trial(oei, lar, alice, bob):
    """At OEI: a family in each state of enrolment, an intervention family waiting for a Family Partner, one with
    its partner, a control family. At LAR: one referred family (bob's)."""
    states = ("referred", "eligible", "ineligible", "consented", "declined", "withdrawn")
    families = {state: family_in_state(state, site=oei, by=alice) for state in states}
    families["waiting"] = randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
    families["assigned"] = assigned_family(oei, researcher=alice, to=partner(oei, "fenna"))
    families["control"] = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    families["at_lar"] = family_in_state("referred", site=lar, by=bob)
    return families


def rows(page: str) -> list[str]:
    """The study IDs of the list's rows, in order."""
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return re.findall(r'<a class="study-id"[^>]*>([A-Z]+-\d+)</a>', body)


def row_of(page: str, family: Family) -> str:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    start = body.index(f">{family.study_id}</a>")
    return body[start : body.index("</tr>", start)]


def counts(page: str) -> dict[str, int]:
    found = re.findall(r'data-count="(\w*)">[^<]*<span class="badge[^"]*">(\d+)</span>', page)
    return {status or "all": int(count) for status, count in found}


def get(client, **params) -> str:
    response = client.get(reverse("families:list"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_it_counts_the_families_by_status_and_each_count_filters_the_list(client, alice, trial):
    client.force_login(alice)

    page = get(client)

    oei = Family.objects.filter(site__code="OEI")
    assert counts(page) == {
        "all": oei.count(),
        **{status: oei.filter(status=status).count() for status in FamilyStatus.values},
    }
    assert counts(page)["randomised"] >= 3
    link = re.search(r'href="\?(status=randomised)" data-count="randomised"', page)
    assert link, "the count is a link to the families of that status"
    filtered = get(client, status="randomised")
    assert sorted(rows(filtered)) == sorted(family.study_id for family in oei.filter(status=FamilyStatus.RANDOMISED))
    assert counts(filtered) == counts(page), "the counts stay those of the whole list"
    assert 'aria-current="true" href="?status=randomised"' in filtered


def test_it_sorts_by_study_id_referral_date_status_and_last_change(client, alice, oei, trial):
    client.force_login(alice)
    Family.objects.filter(pk=trial["referred"].pk).update(referral_date=timezone.localdate() - timedelta(days=400))
    oei_families = list(Family.objects.filter(site=oei))

    by_study_id = [family.study_id for family in sorted(oei_families, key=lambda family: family.number)]
    assert rows(get(client)) == by_study_id
    assert rows(get(client, sort="-study_id")) == by_study_id[::-1]
    assert rows(get(client, sort="referral_date"))[0] == trial["referred"].study_id
    assert rows(get(client, sort="-referral_date"))[-1] == trial["referred"].study_id
    statuses = [Family.objects.get(study_id=study_id).status for study_id in rows(get(client, sort="status"))]
    assert statuses == sorted(statuses, key=FamilyStatus.values.index)
    # The control family was randomised last of all: its change is the latest.
    assert rows(get(client, sort="-last_change"))[0] == trial["control"].study_id
    assert rows(get(client, sort="last_change"))[-1] == trial["control"].study_id
    page = get(client, sort="referral_date")
    assert 'aria-sort="ascending"><a class="sort-link" href="?sort=-referral_date"' in page


def test_it_tells_a_researcher_the_next_step_for_each_family(client, alice, trial):
    client.force_login(alice)

    page = get(client)

    def step(family):
        found = re.search(
            r'<td class="d-none d-sm-table-cell"><a [^>]*href="([^"]+)" data-next-step>([^<]+)', row_of(page, family)
        )
        return (found.group(2).strip(), found.group(1)) if found else None

    study_id = {name: family.study_id for name, family in trial.items()}
    assert step(trial["referred"]) == ("Screen", f"/families/{study_id['referred']}/screen/")
    assert step(trial["eligible"]) == ("Record consent or decline", f"/families/{study_id['eligible']}/consent/")
    assert step(trial["consented"]) == ("Randomise", f"/families/{study_id['consented']}/randomise/")
    assert step(trial["waiting"]) == ("Assign a Family Partner", f"/families/{study_id['waiting']}/family-partner/")
    for nothing_to_do in ("ineligible", "declined", "withdrawn", "assigned", "control"):
        assert step(trial[nothing_to_do]) is None, nothing_to_do


def test_it_shows_the_arm_column_and_filter_to_a_researcher_of_the_site(client, alice, trial):
    client.force_login(alice)

    page = get(client)

    assert '<select class="form-select" name="arm"' in page
    for name, arm in (("waiting", "Family Partner intervention"), ("control", "Usual child welfare services")):
        assert f'<td class="d-none d-sm-table-cell" data-arm>{arm}</td>' in row_of(page, trial[name])
    assert '<td class="d-none d-sm-table-cell" data-arm>—</td>' in row_of(page, trial["consented"])
    intervention = get(client, arm=Arm.INTERVENTION)
    assert sorted(rows(intervention)) == of_arm(Arm.INTERVENTION, site="OEI")
    assert {trial["waiting"].study_id, trial["assigned"].study_id} <= set(rows(intervention))
    assert counts(intervention)["all"] == counts(intervention)["randomised"] == len(of_arm(Arm.INTERVENTION, "OEI"))
    assert sorted(rows(get(client, arm=Arm.CONTROL))) == of_arm(Arm.CONTROL, site="OEI")


def test_it_shows_the_principal_investigator_the_arms_of_every_site_but_no_next_step(client, paula, trial):
    client.force_login(paula)

    page = get(client)

    assert trial["at_lar"].study_id in rows(page)
    assert "data-arm>Usual child welfare services<" in row_of(page, trial["control"])
    assert "data-next-step" not in page
    assert sorted(rows(get(client, arm=Arm.CONTROL))) == of_arm(Arm.CONTROL, site="OEI")


def of_arm(arm: str, site: str) -> list[str]:
    return sorted(Family.objects.filter(allocation__arm=arm, site__code=site).values_list("study_id", flat=True))


@pytest.fixture
def blinded_researcher(oei):
    """A researcher who also assesses outcomes: blinded everywhere."""
    return UserFactory(username="rolf", roles=[Role.RESEARCHER, Role.OUTCOME_ASSESSOR], sites=[oei])


@pytest.mark.parametrize("viewer", ["carol", "blinded_researcher"])
def test_it_gives_a_blinded_user_no_arm_not_even_through_a_forged_filter_or_the_order(request, client, trial, viewer):
    client.force_login(request.getfixturevalue(viewer))

    page = get(client)
    forged = get(client, arm=Arm.INTERVENTION)

    for shown in (page, forged):
        assert "data-arm" not in shown
        assert 'name="arm"' not in shown
        assert "Family Partner intervention" not in shown and "Usual child welfare services" not in shown
        assert "Assign a Family Partner" not in shown and "Randomise<" not in shown
    assert rows(forged) == rows(page) and counts(forged) == counts(page), "the forged filter changes nothing"
    # Sorted by last change, the families changed on one day keep the study ID's order: the order of the day's
    # randomisations (and so their times) cannot be read from the list.
    randomised = [study_id for study_id in rows(get(client, sort="last_change")) if study_id in _randomised(trial)]
    assert randomised == sorted(randomised, key=lambda study_id: int(study_id.split("-")[1]))
    assert not re.search(r"data-last-change>[^<]*\d{1,2}:\d{2}", page), "the last change is a date, with no time"


def _randomised(trial) -> set[str]:
    return set(Family.objects.filter(allocation__isnull=False).values_list("study_id", flat=True))


def test_it_shows_the_time_of_the_last_change_to_a_researcher(client, alice, trial):
    client.force_login(alice)
    assert re.search(r"data-last-change>[^<]*\d{1,2}:\d{2}", get(client))


def queries_for(client, **params) -> int:
    with CaptureQueriesContext(connection) as captured:
        get(client, **params)
    return len(captured.captured_queries)


@pytest.mark.parametrize("viewer", ["alice", "paula", "carol"])
def test_it_shows_the_dashboard_in_the_same_number_of_queries_however_many_families(
    request, client, oei, alice, trial, viewer
):
    client.force_login(request.getfixturevalue(viewer))
    few = queries_for(client), queries_for(client, sort="-last_change", arm=Arm.INTERVENTION)

    for _ in range(8):
        register_family(site=oei, by=alice)
        family_in_state("eligible", site=oei, by=alice)
    randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
    randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    assert Family.objects.filter(site=oei).count() > 25, "more than a page"
    many = queries_for(client), queries_for(client, sort="-last_change", arm=Arm.INTERVENTION)

    assert many == few
    # As the families' own list (families/tests/test_queries.py), and the researchers' waiting-list banner's
    # second query while a family waits (and, since issue 10, the unread count beside the menu; since issue 11, the
    # banner of the researcher's sites whose recruitment is paused or closed).
    assert max(many) <= 18
