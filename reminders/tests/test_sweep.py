"""The daily and weekly sweep: who gets which reminder, on which day, once; and the check made when it is sent."""

from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from families.models import Family
from families.tests.factories import consent_family, family_in_state
from followups.models import Assessment, AssessmentStatus
from notifications.models import Message, MessageStatus
from notifications.services import message_deliver, message_text
from randomization.models import Arm
from reminders import services
from reminders.tests.factories import person, randomised
from trial.dates import add_months
from trial.roles import Role
from visits import services as visit_services
from visits.models import PartnerProfile
from visits.tests.factories import log_contact, partner

TODAY = date(2027, 3, 10)


@pytest.fixture
def family(oei, alice):
    return family_in_state("consented", site=oei, by=alice)


def window(family: Family, opens_on: date, closes_on: date | None, months: int = 3) -> Assessment:
    return Assessment.objects.create(
        family=family, months=months, opens_on=opens_on, target_on=opens_on + timedelta(days=14), closes_on=closes_on
    )


def ordered(rows) -> list[tuple]:
    """(kind, username, due date) by date, then kind and recipient."""
    return sorted(rows, key=lambda row: (row[2], row[0], row[1]))


def reminders_about(about: str, **filters) -> list[tuple]:
    return ordered(Message.objects.filter(about=about, **filters).values_list("kind", "recipient__username", "due_on"))


def deliver_all() -> None:
    for pk in Message.objects.filter(status=MessageStatus.PENDING).values_list("pk", flat=True):
        message_deliver(pk)


# --- Assessments ---------------------------------------------------------------------------------------------


def test_it_reminds_the_sites_assessors_seven_days_before_a_window_opens(family, carol, conrad):
    assessment = window(family, TODAY + timedelta(days=7), TODAY + timedelta(days=49))
    result = services.sweep(TODAY)
    assert reminders_about(f"assessment:{assessment.pk}") == [(services.OPENS_SOON, "carol", TODAY)]
    assert result.made[services.OPENS_SOON] == 1


def test_each_stage_of_a_window_is_reminded_once_on_its_day(family, carol):
    opens, closes = TODAY, TODAY + timedelta(days=42)
    assessment = window(family, opens, closes)
    for offset in range(-10, 60):
        services.sweep(opens + timedelta(days=offset))
        services.sweep(opens + timedelta(days=offset))  # twice a day: a second beat, a rerun
    assert reminders_about(f"assessment:{assessment.pk}") == [
        (services.OPENS_SOON, "carol", opens - timedelta(days=7)),
        (services.OPEN, "carol", opens),
        (services.CLOSING, "carol", closes - timedelta(days=3)),
        (services.MISSED, "carol", closes + timedelta(days=1)),
    ]


def test_a_sweep_that_did_not_run_for_two_days_catches_up_the_current_stage_once(family, carol):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    services.sweep(TODAY - timedelta(days=7))
    services.sweep(TODAY + timedelta(days=2))  # nothing ran on the opening day nor the day after
    services.sweep(TODAY + timedelta(days=3))
    assert reminders_about(f"assessment:{assessment.pk}") == [
        (services.OPENS_SOON, "carol", TODAY - timedelta(days=7)),
        (services.OPEN, "carol", TODAY),
    ]


def test_a_long_outage_sends_only_the_stage_the_assessment_is_in(family, carol):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    services.sweep(TODAY + timedelta(days=40))  # the first sweep in seven weeks: it closes in two days
    assert reminders_about(f"assessment:{assessment.pk}") == [(services.CLOSING, "carol", TODAY + timedelta(days=39))]


def test_nothing_is_reminded_once_the_assessment_is_recorded_or_stopped(family, carol):
    done = window(family, TODAY, TODAY + timedelta(days=42), months=3)
    stopped = window(family, TODAY, TODAY + timedelta(days=42), months=6)
    Assessment.objects.filter(pk=done.pk).update(status=AssessmentStatus.COMPLETED, done_on=TODAY, mode="phone")
    Assessment.objects.filter(pk=stopped.pk).update(
        status=AssessmentStatus.STOPPED, stopped_on=TODAY, stop_reason="withdrawal"
    )
    services.sweep(TODAY)
    assert not Message.objects.filter(about__in=[f"assessment:{done.pk}", f"assessment:{stopped.pk}"]).exists()


def test_nothing_is_reminded_for_a_withdrawn_family(oei, alice, carol):
    family = family_in_state("withdrawn", site=oei, by=alice)
    # A window that closed before the withdrawal is not stopped by it, and yet nobody is reminded.
    assessment = window(family, TODAY - timedelta(days=40), TODAY - timedelta(days=1))
    services.sweep(TODAY)
    assert not Message.objects.filter(about=f"assessment:{assessment.pk}").exists()


def test_a_reminder_for_an_assessment_recorded_before_it_was_sent_is_cancelled(family, carol):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    with time_machine.travel(TODAY.isoformat() + " 06:00 +01:00", tick=False):
        services.sweep()
        Assessment.objects.filter(pk=assessment.pk).update(
            status=AssessmentStatus.COMPLETED, done_on=TODAY, mode="phone"
        )
        deliver_all()
    message = Message.objects.get(about=f"assessment:{assessment.pk}")
    assert message.status == MessageStatus.CANCELLED
    assert mail.outbox == []


def test_a_moved_window_cancels_the_old_reminder_and_gets_its_own(family, carol):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    with time_machine.travel(TODAY.isoformat() + " 06:00 +01:00", tick=False):
        services.sweep()
        # The window is moved ten days later before the reminder went out.
        Assessment.objects.filter(pk=assessment.pk).update(
            opens_on=TODAY + timedelta(days=10), closes_on=TODAY + timedelta(days=52)
        )
        deliver_all()
    assert Message.objects.get(about=f"assessment:{assessment.pk}").status == MessageStatus.CANCELLED
    with time_machine.travel((TODAY + timedelta(days=3)).isoformat() + " 06:00 +01:00", tick=False):
        services.sweep()
        deliver_all()
    assert reminders_about(f"assessment:{assessment.pk}", status=MessageStatus.SENT) == [
        (services.OPENS_SOON, "carol", TODAY + timedelta(days=3))
    ]
    assert len(mail.outbox) == 1


def test_a_former_assessor_of_the_site_is_not_sent_the_reminder(family, carol, oei):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    with time_machine.travel(TODAY.isoformat() + " 06:00 +01:00", tick=False):
        services.sweep()
        carol.trial_sites.remove(oei)
        deliver_all()
    assert Message.objects.get(about=f"assessment:{assessment.pk}").status == MessageStatus.CANCELLED


def test_the_text_names_the_study_id_and_the_site_never_the_family(family, carol):
    assessment = window(family, TODAY, TODAY + timedelta(days=42))
    services.sweep(TODAY)
    message = Message.objects.get(about=f"assessment:{assessment.pk}")
    subject, body = message_text(message, "en")
    assert family.study_id in subject and "OEI" in body
    assert "10/03/2027" not in body and "21.04.2027" not in body
    assert "Kari" not in subject + body and "Nordmann" not in subject + body
    with translation.override("nb"):
        _subject, norwegian = message_text(message, "nb")
    assert "21.04.2027" in norwegian  # the closing date, dd.mm.yyyy


def test_the_sweeps_queries_do_not_depend_on_the_number_of_families(oei, alice, carol):
    def sweep_queries(families: int, on: date) -> int:
        for _ in range(families):
            window(family_in_state("consented", site=oei, by=alice), on, on + timedelta(days=42))
        with CaptureQueriesContext(connection) as queries:
            result = services.sweep(on)
        assert result.made[services.OPEN] >= families
        return len(queries)

    assert sweep_queries(2, TODAY) == sweep_queries(25, TODAY + timedelta(days=100))


# --- Researchers ------------------------------------------------------------------------------------------


def test_it_reminds_the_sites_researchers_of_a_consent_pending_for_fourteen_days(oei, alice, bob, carol):
    with time_machine.travel(TODAY - timedelta(days=1), tick=False):
        # family_in_state screens 20 days before the day it runs.
        family = family_in_state("eligible", site=oei, by=alice)
    screened = TODAY - timedelta(days=21)
    services.sweep(screened + timedelta(days=13))
    assert reminders_about(f"family:{family.pk}") == []
    services.sweep(screened + timedelta(days=14))
    services.sweep(screened + timedelta(days=15))
    assert reminders_about(f"family:{family.pk}") == [
        (services.CONSENT_PENDING, "alice", screened + timedelta(days=14))
    ]


def test_a_consent_recorded_before_the_reminder_went_out_cancels_it(oei, alice):
    family = family_in_state("eligible", site=oei, by=alice)
    services.sweep(date.today() - timedelta(days=20) + timedelta(days=14))
    consent_family(family, by=alice, on_days_ago=1)
    deliver_all()
    assert Message.objects.get(about=f"family:{family.pk}").status == MessageStatus.CANCELLED


def test_it_reminds_unblinded_researchers_of_a_family_waiting_more_than_seven_days(oei, alice, carol, paula):
    blinded_researcher = person("rita", Role.RESEARCHER, Role.OUTCOME_ASSESSOR, sites=[oei])
    with time_machine.travel(f"{TODAY.isoformat()} 23:30 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
    services.sweep(TODAY + timedelta(days=7))
    assert reminders_about(f"family:{family.pk}", kind=services.WAITING_FOR_PARTNER) == []
    services.sweep(TODAY + timedelta(days=8))
    assert reminders_about(f"family:{family.pk}", kind=services.WAITING_FOR_PARTNER) == [
        (services.WAITING_FOR_PARTNER, "alice", TODAY + timedelta(days=8))
    ]
    assert not Message.objects.filter(recipient=blinded_researcher, kind=services.WAITING_FOR_PARTNER).exists()


def test_a_family_given_a_partner_before_the_reminder_went_out_is_not_reminded(oei, alice):
    fiona = partner(oei, "fiona")
    with time_machine.travel(f"{TODAY.isoformat()} 10:00 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
    on = TODAY + timedelta(days=8)
    with time_machine.travel(f"{on.isoformat()} 06:00 +01:00", tick=False):
        services.sweep()
        visit_services.family_assign(family=family, partner=fiona, started_on=on, assigned_by=alice)
        deliver_all()
    assert Message.objects.get(about=f"family:{family.pk}", kind=services.WAITING_FOR_PARTNER).status == (
        MessageStatus.CANCELLED
    )


def test_it_tells_researchers_and_the_partner_when_an_intervention_reaches_3_12_and_18_months(oei, alice, carol):
    fiona = partner(oei, "fiona", email="fiona@example.org")
    start = date(2027, 1, 31)
    with time_machine.travel(f"{start.isoformat()} 10:00 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
        visit_services.family_assign(family=family, partner=fiona, started_on=start, assigned_by=alice)
    day = start
    while day <= add_months(start, 19):
        services.sweep(day)
        day += timedelta(days=1)
    made = reminders_about(f"family:{family.pk}", kind=services.INTERVENTION_MILESTONE)
    assert made == ordered(
        (services.INTERVENTION_MILESTONE, username, on)
        for on in (date(2027, 4, 30), date(2028, 1, 31), date(2028, 7, 31))
        for username in ("alice", "fiona")
    )
    links = {m.context["page"] for m in Message.objects.filter(kind=services.INTERVENTION_MILESTONE)}
    assert links == {"family", "partner"}


def test_no_milestone_after_the_intervention_ended(oei, alice):
    fiona = partner(oei, "fiona")
    start = date(2027, 1, 10)
    with time_machine.travel(f"{start.isoformat()} 10:00 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
        visit_services.family_assign(family=family, partner=fiona, started_on=start, assigned_by=alice)
    with time_machine.travel("2027-03-01 10:00 +01:00", tick=False):
        family.intervention.ended_on = date(2027, 3, 1)
        family.intervention.end_reason = "moved_away"
        family.intervention.ended_by = alice
        family.intervention.save()
    services.sweep(add_months(start, 3))
    assert not Message.objects.filter(kind=services.INTERVENTION_MILESTONE).exists()


# --- The Family Partner's week --------------------------------------------------------------------------------


def test_each_partner_hears_of_their_families_with_no_contact_or_under_target_last_week(oei, alice):
    fiona = partner(oei, "fiona", email="fiona@example.org")
    monday = date(2027, 3, 1)
    families = []
    with time_machine.travel(f"{monday.isoformat()} 10:00 +01:00", tick=False):
        for _ in range(3):
            family = randomised(oei, researcher=alice)
            visit_services.family_assign(family=family, partner=fiona, started_on=monday, assigned_by=alice)
            families.append(Family.objects.get(pk=family.pk))
    on_target, under, silent = families
    with time_machine.travel(f"{(monday + timedelta(days=3)).isoformat()} 10:00 +01:00", tick=False):
        for day in range(3):
            log_contact(on_target, by=fiona.user, contact_date=monday + timedelta(days=day), duration_quarters=8)
        log_contact(under, by=fiona.user, contact_date=monday, duration_quarters=4)
    next_monday = monday + timedelta(days=7)
    services.sweep(next_monday, daily=False)
    services.sweep(next_monday + timedelta(days=2))  # a later sweep of the week: the same summary, not a second
    message = Message.objects.get(kind=services.PARTNER_WEEK)
    assert (message.recipient, message.due_on) == (fiona.user, next_monday)
    assert [row["study_id"] for row in message.context["families"]] == [under.study_id, silent.study_id]
    with translation.override("en"):
        subject, body = message_text(message, "en")
    assert "2027-W09" in subject
    assert f"{under.study_id}: 1 of 6 hours" in body
    assert f"{silent.study_id}: no contact" in body
    assert on_target.study_id not in body


def test_a_partner_with_every_family_on_target_gets_nothing(oei, alice):
    PartnerProfile.objects.all().delete()
    services.sweep(date(2027, 3, 8))
    assert not Message.objects.filter(kind=services.PARTNER_WEEK).exists()


def test_reminders_about_the_partners_work_never_name_a_family_in_the_subject(oei, alice):
    fiona = partner(oei, "fiona")
    with time_machine.travel("2027-01-04 10:00 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
        visit_services.family_assign(family=family, partner=fiona, started_on=date(2027, 1, 4), assigned_by=alice)
    services.sweep(date(2027, 1, 11))
    services.sweep(date(2027, 4, 4))
    messages = Message.objects.filter(
        kind__in=[services.PARTNER_WEEK, services.INTERVENTION_MILESTONE, services.NEW_FAMILY]
    )
    assert {m.kind for m in messages} == {services.PARTNER_WEEK, services.INTERVENTION_MILESTONE, services.NEW_FAMILY}
    for message in messages:
        for language in ("en", "nb"):
            subject, body = message_text(message, language)
            assert family.study_id not in subject
            assert family.study_id in body
            assert str(Arm.INTERVENTION.label) not in subject + body
