"""A site's recruitment state: who sets it and how (trial.services.site_set_recruitment_state), the page, what
researchers see, and registration refused at a site that is not open (families.services.family_register)."""

import uuid
from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from families import services as family_services
from families.models import Family, ReferralSource
from families.tests.factories import days_ago
from families.tests.test_concurrency import run_together
from trial.models import RecruitmentState, Site
from trial.selectors import site_recruitment_states
from trial.services import site_set_recruitment_state


def register(site, by, token=None) -> Family:
    return family_services.family_register(
        site=site,
        referral_date=days_ago(30),
        referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
        parent_birth_years=[1990],
        child_birth_dates=[date(2019, 3, 1)],
        identifiers=family_services.Identifiers(contact_name="Kari Nordmann"),
        registered_by=by,
        token=token or uuid.uuid4(),
    )


def pause(site, by, reason="The municipality reorganises its child welfare service") -> Site:
    return site_set_recruitment_state(site=site, state=RecruitmentState.PAUSED, reason=reason, changed_by=by)


# ---- the service


@pytest.mark.parametrize("who", ["dina", "paula"])
def test_it_lets_data_managers_and_the_pi_pause_a_site_with_the_reason_in_its_history(request, oei, who):
    user = request.getfixturevalue(who)

    pause(oei, user)

    oei.refresh_from_db()
    assert oei.recruitment_state == RecruitmentState.PAUSED
    assert oei.recruitment_state_reason == "The municipality reorganises its child welfare service"
    latest = oei.history.latest()
    assert latest.recruitment_state == RecruitmentState.PAUSED
    assert latest.history_change_reason == "The municipality reorganises its child welfare service"
    assert latest.history_user == user


@pytest.mark.parametrize("who", ["alice", "carol", "frank", "adam"])
def test_it_refuses_everyone_else_in_the_service(request, oei, who):
    with pytest.raises(PermissionDenied):
        pause(oei, request.getfixturevalue(who))
    assert Site.objects.get(pk=oei.pk).recruitment_state == RecruitmentState.OPEN


@pytest.mark.parametrize("reason", ["", "   "])
def test_it_needs_a_reason(oei, dina, reason):
    with pytest.raises(ValidationError) as refused:
        pause(oei, dina, reason=reason)
    assert "reason" in refused.value.message_dict
    assert Site.objects.get(pk=oei.pk).recruitment_state == RecruitmentState.OPEN


def test_it_refuses_a_change_to_the_state_the_site_is_in(oei, dina):
    history = oei.history.count()
    with pytest.raises(ValidationError) as refused:
        site_set_recruitment_state(site=oei, state=RecruitmentState.OPEN, reason="Open it", changed_by=dina)
    assert "already" in refused.value.message_dict["state"][0]
    assert oei.history.count() == history


def test_it_refuses_a_state_it_does_not_know(oei, dina):
    with pytest.raises(ValidationError):
        site_set_recruitment_state(site=oei, state="half-open", reason="Why not", changed_by=dina)


# ---- registration at a site that is not open


@pytest.mark.parametrize("state", [RecruitmentState.PAUSED, RecruitmentState.CLOSED])
def test_it_refuses_to_register_a_family_at_a_site_that_is_not_open(oei, alice, dina, state):
    site_set_recruitment_state(site=oei, state=state, reason="Pilot target reached", changed_by=dina)

    with pytest.raises(ValidationError) as refused:
        register(oei, alice)

    assert "is not recruiting" in refused.value.message_dict["site"][0]
    assert not Family.objects.exists()
    assert Site.objects.get(pk=oei.pk).last_family_number == 0


def test_it_registers_again_once_the_site_is_reopened(oei, alice, dina):
    pause(oei, dina)
    site_set_recruitment_state(site=oei, state=RecruitmentState.OPEN, reason="Staff back", changed_by=dina)

    assert register(oei, alice).study_id == "OEI-001"


def test_it_still_answers_a_resubmitted_registration_after_the_site_was_paused(oei, alice, dina):
    token = uuid.uuid4()
    family = register(oei, alice, token=token)
    pause(oei, dina)

    assert register(oei, alice, token=token) == family


def test_it_registers_at_an_open_site_while_another_is_closed(oei, lar, bob, dina):
    site_set_recruitment_state(site=oei, state=RecruitmentState.CLOSED, reason="Closed", changed_by=dina)

    assert register(lar, bob).study_id == "LAR-001"


@pytest.mark.postgres
def test_it_lets_no_registration_in_after_a_pause_that_races_it(transactional_db, postgres, oei, alice, dina):
    """Four researchers register while a data manager pauses the site, five times over. A registration is either
    saved before the pause (its history row is older than the pause's) or refused: never saved after it."""
    registered_after_pause = []
    for round_number in range(5):

        def work(i, round_number=round_number):
            if i == 0:
                return pause(oei, dina, reason=f"Pause {round_number}")
            return register(oei, alice)

        results, errors = run_together(5, work)
        assert errors[0] is None
        assert all(error is None or isinstance(error, ValidationError) for error in errors[1:]), errors
        paused_at = Site.history.filter(id=oei.pk, history_change_reason=f"Pause {round_number}").get().history_date
        for family in results[1:]:
            if family is not None:
                created = Family.history.get(id=family.pk, history_type="+").history_date
                if created > paused_at:
                    registered_after_pause.append(family.study_id)
        site_set_recruitment_state(site=oei, state=RecruitmentState.OPEN, reason="Reopen", changed_by=dina)
    assert registered_after_pause == []


# ---- the page


def test_it_lists_every_site_with_its_state_since_when_and_why(client, oei, lar, dina):
    pause(oei, dina)
    client.force_login(dina)

    response = client.get(reverse("recruitment_states"))
    page = response.content.decode()

    rows = {row.site.code: row for row, _form in response.context["sites"]}
    assert rows["OEI"].since == oei.history.latest().history_date
    assert rows["OEI"].changed_by == "dina"
    assert rows["LAR"].since is None
    assert 'data-site-recruitment="OEI"' in page and 'data-site-recruitment="LAR"' in page
    assert "The municipality reorganises its child welfare service" in page
    assert page.count('name="OEI-state"') == 3  # one radio per state
    assert reverse("site_recruitment_state", kwargs={"site_code": "OEI"}) in page


def test_it_pauses_a_site_from_its_form(client, oei, dina):
    client.force_login(dina)

    response = client.post(
        reverse("site_recruitment_state", kwargs={"site_code": "OEI"}),
        {"OEI-state": "paused", "OEI-reason": "Staff on leave"},
    )

    assert response.status_code == 302 and response.url == reverse("recruitment_states")
    oei.refresh_from_db()
    assert (oei.recruitment_state, oei.recruitment_state_reason) == ("paused", "Staff on leave")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"OEI-state": "paused", "OEI-reason": ""}, "reason"),
        ({"OEI-state": "open", "OEI-reason": "Why"}, "state"),  # it is open already
        ({"OEI-state": "ajar", "OEI-reason": "Why"}, "state"),
        ({"OEI-state": "paused", "OEI-reason": "x" * 501}, "reason"),
    ],
)
def test_it_shows_bad_input_as_an_error_on_the_form(client, oei, dina, data, field):
    client.force_login(dina)

    response = client.post(reverse("site_recruitment_state", kwargs={"site_code": "OEI"}), data)

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert Site.objects.get(pk=oei.pk).recruitment_state == RecruitmentState.OPEN


def test_it_answers_404_for_a_site_that_does_not_exist(client, dina):
    client.force_login(dina)
    assert client.get(reverse("site_recruitment_state", kwargs={"site_code": "XYZ"})).status_code == 404


# ---- what researchers see


def test_it_shows_researchers_a_banner_for_their_sites_that_are_not_open(client, oei, lar, alice, bob, dina):
    pause(oei, dina, reason="Waiting for new Family Partners")
    client.force_login(alice)
    for name in ("families:list", "families:register"):
        page = client.get(reverse(name)).content.decode()
        assert 'data-recruitment-banner="OEI"' in page, name
        assert "Waiting for new Family Partners" in page, name
    client.force_login(bob)
    for name in ("families:list", "families:register"):
        assert "data-recruitment-banner" not in client.get(reverse(name)).content.decode(), name


def test_it_shows_no_banner_when_the_sites_are_open(client, oei, alice):
    client.force_login(alice)
    assert "data-recruitment-banner" not in client.get(reverse("families:list")).content.decode()


def test_it_refuses_the_registration_form_at_a_paused_site_with_the_message(client, oei, alice, dina):
    pause(oei, dina)
    client.force_login(alice)
    data = {
        "token": str(uuid.uuid4()),
        "site": oei.pk,
        "referral_date": days_ago(3).isoformat(),
        "referral_source": "child_welfare_caseworker",
        "contact_name": "Ola Nordmann",
        "parents-TOTAL_FORMS": 1,
        "parents-INITIAL_FORMS": 0,
        "parents-0-birth_year": 1988,
        "children-TOTAL_FORMS": 1,
        "children-INITIAL_FORMS": 0,
        "children-0-birth_date": "2019-03-01",
    }

    response = client.post(reverse("families:register"), data)

    assert response.status_code == 200
    assert "is not recruiting" in response.context["form"].errors["site"][0]
    assert not Family.objects.exists()


def test_it_dates_the_state_from_the_change_that_made_it(oei, lar, dina, paula):
    pause(oei, dina)
    site_set_recruitment_state(site=oei, state=RecruitmentState.CLOSED, reason="Target reached", changed_by=paula)
    site_set_recruitment_state(site=lar, state=RecruitmentState.PAUSED, reason="Staff on leave", changed_by=dina)
    site_set_recruitment_state(site=lar, state=RecruitmentState.OPEN, reason="Staff back", changed_by=dina)

    rows = {row.site.code: row for row in site_recruitment_states()}

    oei_row = rows["OEI"]
    assert (oei_row.state_label, oei_row.reason, oei_row.changed_by) == ("Closed", "Target reached", "paula")
    assert rows["OEI"].since == oei.history.latest().history_date
    assert (rows["LAR"].state_label, rows["LAR"].since) == ("Open", lar.history.latest().history_date)


def test_it_leaves_the_recruitment_state_read_only_in_the_admin(client, oei, adam):
    client.force_login(adam)
    url = reverse("admin:trial_site_change", args=[oei.pk])

    page = client.get(url).content.decode()

    assert 'name="recruitment_state"' not in page
    assert 'name="recruitment_state_reason"' not in page
