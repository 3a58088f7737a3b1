"""A family's timeline: every change, newest first, with who made it, when, and what changed from what."""

import uuid
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from families import services
from families.models import Family, ReferralSource, StruggleArea
from families.selectors import family_timeline
from trial.roles import Role, roles_of
from trial.tests.factories import UserFactory


@pytest.fixture
def rita(oei):
    """A second researcher at Øvre Eiker, who does the screenings."""
    return UserFactory(
        username="rita", first_name="Rita", last_name="Screenersen", roles=[Role.RESEARCHER], sites=[oei]
    )


@pytest.fixture
def enrolled_family(alice, rita, oei) -> Family:
    """Registered by alice, screened not eligible by rita, screened again eligible, consent by alice."""
    alice.first_name, alice.last_name = "Alice", "Registrarsen"
    alice.save()
    family = services.family_register(
        site=oei,
        referral_date=date(2025, 6, 1),
        referral_source=ReferralSource.HEALTH_SERVICE,
        parent_birth_years=[1988],
        child_birth_dates=[date(2019, 3, 1)],
        identifiers=services.Identifiers(contact_name="Kari Hemmelig Nordmann", national_id_number="01019012480"),
        registered_by=alice,
        token=uuid.uuid4(),
    )
    services.family_screen(
        family=family,
        screened_on=date(2025, 6, 5),
        involved_with_child_welfare=True,
        harmful_circumstances=False,
        struggle_areas=[StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH],
        screened_by=rita,
        token=uuid.uuid4(),
    )
    services.family_screen(
        family=family,
        screened_on=date(2025, 6, 12),
        involved_with_child_welfare=True,
        harmful_circumstances=True,
        struggle_areas=[StruggleArea.FINANCES, StruggleArea.MENTAL_HEALTH],
        rescreening_reason="New report from the school",
        screened_by=rita,
        token=uuid.uuid4(),
    )
    services.family_record_consent(
        family=family,
        decided_on=date(2025, 6, 20),
        form_version="v1.2",
        obtained_by=alice,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    return Family.objects.get(pk=family.pk)


def status_changes(events):
    return [
        (event.who, change.old, change.new)
        for event in events
        if event.what == "Family changed"
        for change in event.changes
        if change.label == "status"
    ]


def test_it_lists_the_events_newest_first(enrolled_family):
    events = family_timeline(enrolled_family, viewer=enrolled_family.registered_by)
    assert [event.when for event in events] == sorted((event.when for event in events), reverse=True)
    assert events[0].what == "Family changed"
    assert events[1].what == "Consent added"
    assert events[-1].what == "Family added"


def test_it_shows_each_status_change_as_old_and_new_labels_with_who_made_it(enrolled_family):
    assert status_changes(family_timeline(enrolled_family, viewer=enrolled_family.registered_by)) == [
        ("Alice Registrarsen", "Screened eligible", "Consented"),
        ("Rita Screenersen", "Screened not eligible", "Screened eligible"),
        ("Rita Screenersen", "Referred", "Screened not eligible"),
    ]


def test_it_names_the_screener_and_the_reasons_of_each_screening(enrolled_family):
    screenings = [
        event
        for event in family_timeline(enrolled_family, viewer=enrolled_family.registered_by)
        if event.what == "Screening added"
    ]
    assert [event.who for event in screenings] == ["Rita Screenersen", "Rita Screenersen"]
    newest, first = ({change.label: change.new for change in event.changes} for event in screenings)
    assert newest["eligible"] == "Yes"
    assert newest["reason for screening again"] == "New report from the school"
    assert newest["screening date"] == "2025-06-12"
    assert newest["screened by"] == "Rita Screenersen"
    assert first["eligible"] == "No"
    assert first["failed criteria"] == "Children not living under potentially harmful circumstances"
    assert first["areas the parents struggle in"] == "Poverty or finances, Mental health"
    assert "reason for screening again" not in first


def test_it_shows_the_consent_with_who_obtained_it(enrolled_family):
    consent = next(
        event
        for event in family_timeline(enrolled_family, viewer=enrolled_family.registered_by)
        if event.what == "Consent added"
    )
    changes = {change.label: change.new for change in consent.changes}
    assert consent.who == "Alice Registrarsen"
    assert changes["decision"] == "Consented"
    assert changes["date"] == "2025-06-20"
    assert changes["consent form version"] == "v1.2"
    assert changes["consent obtained by"] == "Alice Registrarsen"


def test_it_shows_the_registration_with_its_household(enrolled_family):
    events = family_timeline(enrolled_family, viewer=enrolled_family.registered_by)
    registration = events[-1]
    changes = {change.label: change.new for change in registration.changes}
    assert registration.who == "Alice Registrarsen"
    assert changes["referral source"] == "Health service"
    assert changes["referral date"] == "2025-06-01"
    assert changes["status"] == "Referred"
    assert any(e.what == "Parent added" and e.changes[0].new == "1988" for e in events)
    assert any(e.what == "Child added" and e.changes[0].new == "2019-03-01" for e in events)


def test_it_never_shows_the_direct_identifiers_in_the_timeline(enrolled_family):
    events = family_timeline(enrolled_family, viewer=enrolled_family.registered_by)
    identity = next(event for event in events if event.what == "Direct identifiers added")
    assert {change.new for change in identity.changes} == {"(hidden)"}
    shown = repr(events)
    assert "Hemmelig" not in shown
    assert "01019012480" not in shown


def test_it_reads_the_timeline_in_the_same_number_of_queries_however_long_it_is(
    enrolled_family, alice, oei, django_assert_max_num_queries
):
    short_family = services.family_register(
        site=oei,
        referral_date=date(2025, 6, 1),
        referral_source=ReferralSource.OTHER,
        parent_birth_years=[1990],
        child_birth_dates=[date(2020, 1, 1)],
        identifiers=services.Identifiers(contact_name="Ola"),
        registered_by=alice,
        token=uuid.uuid4(),
    )
    # As the family page reads them: with their site.
    short_family, enrolled_family = (
        Family.objects.select_related("site").filter(pk__in=[short_family.pk, enrolled_family.pk]).order_by("-pk")
    )
    # One query per audited model (seven) and one for the people named. (The viewer's roles are read once per
    # request, before the page reads the timeline.)
    roles_of(alice)
    with django_assert_max_num_queries(8) as short:
        family_timeline(short_family, viewer=alice)
    with django_assert_max_num_queries(8) as long:
        family_timeline(enrolled_family, viewer=alice)
    assert len(short.captured_queries) == len(long.captured_queries)


def test_it_shows_the_timeline_on_the_family_page(client, enrolled_family, alice):
    client.force_login(alice)
    response = client.get(reverse("families:detail", args=[enrolled_family.study_id]))
    assert response.status_code == 200
    page = response.content.decode()
    timeline = page[page.index("data-timeline") :]
    assert "Status: <del>Screened not eligible</del> → Screened eligible" in timeline
    assert "Status: <del>Screened eligible</del> → Consented" in timeline
    assert "Rita Screenersen" in timeline
    assert "Alice Registrarsen" in timeline
    assert "Reason for screening again: New report from the school" in timeline
    newest = family_timeline(enrolled_family, viewer=enrolled_family.registered_by)[0]
    assert date_format(timezone.localtime(newest.when), "SHORT_DATETIME_FORMAT") in timeline
    assert timeline.index("Consent added") < timeline.index("Screening added") < timeline.index("Family added")
    assert "Hemmelig" not in timeline


def test_it_shows_the_timeline_to_the_principal_investigator_without_identifiers(client, enrolled_family, paula):
    client.force_login(paula)
    response = client.get(reverse("families:detail", args=[enrolled_family.study_id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Screened not eligible</del> → Screened eligible" in page
    assert "Hemmelig" not in page
    assert "01019012480" not in page


def test_it_shows_the_timeline_in_norwegian(client, enrolled_family, alice):
    client.force_login(alice)
    response = client.get(reverse("families:detail", args=[enrolled_family.study_id]), HTTP_ACCEPT_LANGUAGE="nb")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<del>Screenet, ikke inkluderbar</del> → Screenet, inkluderbar" in page
    newest = family_timeline(enrolled_family, viewer=enrolled_family.registered_by)[0]
    assert timezone.localtime(newest.when).strftime("%d.%m.%Y %H:%M") in page
