"""`manage.py send_reminders` and the beat's task: one sweep each, nothing twice."""

from datetime import date, timedelta
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command

from families.tests.factories import family_in_state
from followups.models import Assessment
from notifications.models import Message
from reminders import services, tasks
from reminders.tests.factories import randomised
from visits import services as visit_services
from visits.tests.factories import log_contact, partner

DAY = date(2027, 3, 10)


@pytest.fixture
def assessment(oei, alice, carol):
    family = family_in_state("consented", site=oei, by=alice)
    return Assessment.objects.create(
        family=family, months=3, opens_on=DAY, target_on=DAY + timedelta(days=14), closes_on=DAY + timedelta(days=42)
    )


def run(*args) -> str:
    out = StringIO()
    call_command("send_reminders", *args, stdout=out)
    return out.getvalue()


def test_it_runs_one_sweep_for_the_date_given_and_says_what_it_made(assessment):
    first = run("--date", DAY.isoformat())
    assert "Reminders for 2027-03-10: 1 made." in first
    assert "An assessment window is open" in first
    assert "0 made." in run("--date", DAY.isoformat())
    assert Message.objects.filter(about=f"assessment:{assessment.pk}").count() == 1


def test_it_sweeps_today_in_oslo_by_default(assessment):
    # 23:30 UTC on the 9th is already the 10th in Oslo.
    with time_machine.travel("2027-03-09 23:30 +00:00", tick=False):
        assert "Reminders for 2027-03-10: 1 made." in run()


def test_it_refuses_a_date_it_cannot_read(db):
    with pytest.raises(CommandError, match="Not a date"):
        run("--date", "10.03.2027")


def test_the_beat_runs_the_daily_sweep_at_six_and_the_weekly_on_monday_at_seven_in_oslo():
    daily, weekly = settings.CELERY_BEAT_SCHEDULE["reminders-daily"], settings.CELERY_BEAT_SCHEDULE["reminders-weekly"]
    assert daily["task"] == weekly["task"] == "reminders.tasks.sweep"
    assert (daily["schedule"].hour, daily["schedule"].minute, daily["kwargs"]) == ({6}, {0}, {"part": "daily"})
    assert (weekly["schedule"].hour, weekly["schedule"].day_of_week, weekly["kwargs"]) == ({7}, {1}, {"part": "weekly"})
    assert settings.CELERY_TIMEZONE == "Europe/Oslo"


def test_the_daily_task_leaves_mondays_summary_to_the_weekly_one_and_catches_it_up_later(oei, alice):
    fiona = partner(oei, "fiona")
    with time_machine.travel("2027-03-01 10:00 +01:00", tick=False):
        family = randomised(oei, researcher=alice)
        visit_services.family_assign(family=family, partner=fiona, started_on=date(2027, 3, 1), assigned_by=alice)
        log_contact(family, by=fiona.user, duration_quarters=2)
    with time_machine.travel("2027-03-08 06:00 +01:00", tick=False):
        tasks.sweep("daily")
        assert not Message.objects.filter(kind=services.PARTNER_WEEK).exists()
    with time_machine.travel("2027-03-09 06:00 +01:00", tick=False):
        tasks.sweep("daily")  # Monday's 07:00 job did not run: Tuesday's daily one makes the summary
        tasks.sweep("weekly")
    summary = Message.objects.get(kind=services.PARTNER_WEEK)
    assert summary.due_on == date(2027, 3, 8)


def test_the_demo_ends_with_a_sweep_so_that_its_inboxes_hold_reminders(settings, tmp_path, oei, lar):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "Reminders:" in out.getvalue()
    kinds = set(Message.objects.values_list("recipient__username", "kind"))
    assert ("researcher", services.CONSENT_PENDING) in kinds
    assert ("pi", services.RANDOMISATION_RECEIPT) in kinds
    assert ("partner", services.NEW_FAMILY) in kinds
