"""The follow-up pages: the grid, the worklist, recording with its out-of-window confirmation, booking, contact
details (each view recorded), lost to follow-up, the family page's section, the randomise page's refusal; the
assessor's guess never shown anywhere."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from families.tests.factories import family_in_state
from followups.models import Assessment, BlindingGuess
from followups.tests.factories import record, record_baseline
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from tests.test_blinding import arm_traces
from trial.models import AuditEvent, EventKind


@pytest.fixture
def listed(oei, dina):
    return allocation_list_for(oei, by=dina, length=200)


@pytest.fixture
def family(listed, oei, alice):
    return randomised_family(oei, researcher=alice).family


def _today():
    return timezone.localdate()


def _grid(client, **params):
    return client.get(reverse("followups:grid"), params)


def test_the_assessors_home_is_their_worklist(client, carol, family):
    client.force_login(carol)
    response = client.get(reverse("home"))
    assert response.url == reverse("followups:worklist")
    page = client.get(response.url).content.decode()
    assert family.study_id not in page  # randomised today: its first window opens in about ten weeks


def test_the_worklist_shows_what_is_due_overdue_and_booked(client, carol, listed, oei, alice):
    due = family_in_state("consented", site=oei, by=alice)  # its baseline is open
    booked = family_in_state("consented", site=oei, by=alice)
    from followups import services

    services.assessment_book(
        assessment=Assessment.objects.get(family=booked, months=0), booked_on=_today(), booked_by=carol
    )
    late = randomised_family(oei, researcher=alice).family
    Assessment.objects.filter(family=late, months=3).update(
        opens_on=_today() - timedelta(days=40),
        target_on=_today() - timedelta(days=30),
        closes_on=_today() - timedelta(days=1),
    )
    client.force_login(carol)
    response = client.get(reverse("followups:worklist"))
    sections = {
        name: [item.assessment.family.study_id for item in getattr(response.context["worklist"], name).items]
        for name in ("due_this_week", "overdue", "booked")
    }
    assert sections == {"due_this_week": [due.study_id], "overdue": [late.study_id], "booked": [booked.study_id]}
    assert reverse("followups:contact", args=[due.study_id]) in response.content.decode()


def test_the_grid_shows_every_state_with_its_name_and_a_stable_id(client, carol, family):
    client.force_login(carol)
    page = _grid(client).content.decode()
    three = Assessment.objects.get(family=family, months=3)
    assert f'id="assessment-{three.pk}"' in page
    assert 'data-state="not_yet_open"' in page and "not yet open" in page
    assert 'data-state="completed"' in page  # the baseline


def test_the_grid_filters_by_site_and_state(client, paula, listed, oei, lar, alice, bob):
    at_oei = randomised_family(oei, researcher=alice).family
    at_lar = family_in_state("consented", site=lar, by=bob)
    client.force_login(paula)
    families = lambda **params: [row.family.study_id for row in _grid(client, **params).context["grid"].rows]  # noqa: E731
    assert families() == sorted([at_oei.study_id, at_lar.study_id])
    assert families(site=lar.pk) == [at_lar.study_id]
    assert families(state="open") == [at_lar.study_id]
    assert families(state="completed") == [at_oei.study_id]
    assert families(state="nonsense") == sorted([at_oei.study_id, at_lar.study_id])  # ignored, said so


def test_the_grid_shows_only_the_families_of_the_users_sites(client, carol, listed, oei, lar, bob, alice, dina):
    at_lar = family_in_state("consented", site=lar, by=bob)
    at_oei = family_in_state("consented", site=oei, by=alice)
    client.force_login(carol)
    page = _grid(client).content.decode()
    assert at_oei.study_id in page and at_lar.study_id not in page
    client.force_login(dina)
    assert _grid(client).status_code == 403


def test_the_grid_takes_the_same_number_of_queries_for_5_and_50_families(client, carol, listed, oei, alice):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert _grid(client).status_code == 200
        return len(queries)

    client.force_login(carol)
    for _ in range(5):
        randomised_family(oei, researcher=alice)
    five = count()
    for _ in range(45):
        family_in_state("consented", site=oei, by=alice)
    assert count() == five
    assert five <= 14


def test_an_assessor_books_then_records_out_of_window_after_confirming(client, carol, family):
    three = Assessment.objects.get(family=family, months=3)
    url = reverse("followups:assessment", args=[family.study_id, 3])
    client.force_login(carol)
    grid = reverse("followups:grid")
    response = client.post(
        reverse("followups:book", args=[family.study_id, 3]),
        {"booked_on": (_today() + timedelta(days=2)).isoformat(), "next": grid},
    )
    assert response.status_code == 302
    assert Assessment.objects.get(pk=three.pk).booked_on == _today() + timedelta(days=2)
    data = {
        "token": str(uuid.uuid4()),
        "status": "completed",
        "done_on": _today().isoformat(),
        "mode": "home_visit",
        "questionnaires": ["SDQ", "PSI-SF"],
        "arm_guess": "partner",
        "next": grid,
    }
    first = client.post(url, data)
    assert first.status_code == 200
    assert b"data-outside-window-confirmation" in first.content
    assert Assessment.objects.get(pk=three.pk).status == "scheduled"
    second = client.post(url, data | {"confirm_outside_window": "on"})
    assert second.status_code == 302 and second.url == grid
    recorded = Assessment.objects.get(pk=three.pk)
    assert (recorded.status, recorded.outside_window, recorded.questionnaires) == ("completed", True, ["SDQ", "PSI-SF"])
    # A double click: the same token records nothing more.
    client.post(url, data | {"confirm_outside_window": "on"})
    assert three.history.filter(status="completed").count() == 1


def test_the_arm_guess_is_never_shown(client, carol, alice, paula, adam, family):
    three = Assessment.objects.get(family=family, months=3)
    record(three, by=carol, done_on=_today(), confirm_outside_window=True, arm_guess="intervention")
    assert BlindingGuess.objects.get().guess == "intervention"
    pages = [
        reverse("families:detail", args=[family.study_id]),
        reverse("followups:assessment", args=[family.study_id, 3]),
        reverse("followups:grid"),
    ]
    for user in (carol, alice, paula):
        client.force_login(user)
        for url in pages:
            content = client.get(url).content.decode()
            for tell in ("arm guessed", "blinding guess"):
                assert tell not in content, (user.username, url, tell)
            assert not re.search(r'<input[^>]*name="arm_guess"[^>]*checked', content), (user.username, url)
            if user == carol:
                assert not arm_traces(content), url
    # Nor the timeline's history, nor the admin (no list of assessments or guesses there).
    timeline = client.get(reverse("families:detail", args=[family.study_id])).context["timeline"]
    assert not any("guess" in change.label for event in timeline for change in event.changes)
    client.force_login(adam)
    index = client.get("/admin/").content.decode()
    assert "followups" not in index.lower() and "guess" not in index.lower()


def test_the_correction_form_never_prefills_the_guess(client, carol, family):
    three = Assessment.objects.get(family=family, months=3)
    record(three, by=carol, done_on=_today(), confirm_outside_window=True, arm_guess="control")
    client.force_login(carol)
    page = client.get(reverse("followups:assessment", args=[family.study_id, 3])).content.decode()
    assert "Reason for the correction" in page
    assert not re.search(r'<input[^>]*name="arm_guess"[^>]*checked', page)


def test_contact_details_show_the_name_and_phone_only_and_each_view_is_recorded(client, carol, listed, oei, alice):
    family = family_in_state("consented", site=oei, by=alice)  # its baseline window is open
    client.force_login(carol)
    url = reverse("followups:contact", args=[family.study_id])
    for _ in range(2):
        page = client.get(url).content.decode()
        assert "Kari Nordmann" in page and "91234567" in page
    events = AuditEvent.objects.filter(kind=EventKind.CONTACT_DETAILS_VIEWED, user=carol, subject=family.study_id)
    assert events.count() == 2
    identity = family.identity
    for hidden in filter(None, (identity.address, identity.national_id_number, identity.other_members)):
        assert hidden not in page


def test_no_contact_details_without_an_open_or_upcoming_window(client, carol, family):
    client.force_login(carol)
    response = client.get(reverse("followups:contact", args=[family.study_id]))
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(kind=EventKind.CONTACT_DETAILS_VIEWED).exists()


def test_the_randomise_page_shows_the_baseline_refusal_before_the_confirm_button(client, alice, listed, oei):
    consented = family_in_state("consented", site=oei, by=alice)
    client.force_login(alice)
    url = reverse("randomization:randomise", args=[consented.study_id])
    page = client.get(url).content.decode()
    assert "data-randomisation-refusals" in page and "baseline" in page
    assert "Randomise now" not in page
    record_baseline(consented)
    page = client.get(url).content.decode()
    assert "data-randomisation-refusals" not in page and "Randomise now" in page


def test_the_family_page_lists_the_schedule(client, alice, carol, family):
    for user in (alice, carol):
        client.force_login(user)
        page = client.get(reverse("families:detail", args=[family.study_id])).content.decode()
        assert "data-followup-section" in page
        assert page.count('data-assessment-id="') == 5


def test_an_assessor_records_a_family_lost_to_follow_up(client, carol, family):
    client.force_login(carol)
    response = client.post(
        reverse("followups:lost", args=[family.study_id]),
        {"token": str(uuid.uuid4()), "lost_on": _today().isoformat(), "reason": "moved", "details": ""},
    )
    assert response.status_code == 302
    assert set(Assessment.objects.filter(family=family).exclude(months=0).values_list("status", flat=True)) == {
        "stopped"
    }


def test_a_blinded_assessor_reads_no_details_written_after_randomisation(client, carol, family, alice):
    three = Assessment.objects.get(family=family, months=3)
    record(
        three, by=carol, status="partly", done_on=_today(), confirm_outside_window=True, details="The partner came by"
    )
    client.force_login(carol)
    for url in (
        reverse("families:detail", args=[family.study_id]),
        reverse("followups:assessment", args=[family.study_id, 3]),
    ):
        assert "The partner came by" not in client.get(url).content.decode()


def test_ready_to_randomise_families_get_randomised(listed, oei, alice):
    family = ready_to_randomise(oei, by=alice)
    assert Assessment.objects.get(family=family, months=0).status == "completed"


def test_it_never_sends_the_assessor_to_another_site_after_recording(client, carol, family):
    client.force_login(carol)
    url = reverse("followups:assessment", args=[family.study_id, 3])
    response = client.post(
        url,
        {
            "token": str(uuid.uuid4()),
            "status": "refused",
            "done_on": _today().isoformat(),
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response.url == reverse("followups:grid")


def test_researchers_and_the_pi_read_but_do_not_record(client, alice, paula, dina, family):
    url = reverse("followups:assessment", args=[family.study_id, 3])
    for user in (alice, paula):
        client.force_login(user)
        page = client.get(url)
        assert page.status_code == 200 and page.context["form"] is None
        assert client.post(url, {"status": "refused"}).status_code == 403
    client.force_login(dina)
    assert client.get(url).status_code == 404
