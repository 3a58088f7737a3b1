"""What the Family Partner reads on a phone: the family's name on each card; a contact's length as they chose it
("1 h 30 min"); the week's bar judged against the part of the week that has passed (nothing is expected of a
Monday morning); a link to correct a contact just logged; no weeks from before the intervention; and bars that
need no inline style (a Content-Security-Policy of default-src 'self' is coming)."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from families.models import FamilyIdentity
from families.tests.factories import days_ago
from trial.models import TrialSettings
from visits import selectors, services, weeks
from visits.models import Assignment, Contact, InterventionPeriod
from visits.tests.factories import assigned_family, days_back, log_contact

MONDAY = weeks.week_start(weeks.today())


def started_on(family, day):
    """The family's intervention and assignment moved to `day` (a factory family is randomised today)."""
    planned_end = weeks.add_months(day, TrialSettings.current().intervention_expected_months)
    InterventionPeriod.objects.filter(family=family).update(started_on=day, planned_end_on=planned_end)
    Assignment.objects.filter(family=family).update(started_on=day)
    return family


@pytest.fixture
def family(oei, alice, fiona):
    """Fiona's family for three weeks."""
    with days_back(21):
        return assigned_family(oei, researcher=alice, to=fiona)


def test_my_families_names_each_family(client, oei, alice, fiona, family):
    name = FamilyIdentity.objects.get(family=family).contact_name  # as registered: "Kari Nordmann"
    client.force_login(fiona.user)

    page = html.unescape(client.get(reverse("visits:partner_home")).content.decode())

    card = page[page.index(f'data-partner-family="{family.study_id}"') :].split("</section>")[0]
    assert name in card
    assert "data-family-name" in card


def test_a_contact_shows_its_length_as_it_was_chosen(client, fiona, family):
    contact = log_contact(family, by=fiona.user, duration_quarters=6)
    client.force_login(fiona.user)

    page = client.get(reverse("visits:family", args=[family.study_id])).content.decode()

    entry = page[page.index(f'data-contact="{contact.pk}"') :].split("</article>")[0]
    assert "1 h 30 min" in entry
    assert "1.5 h" not in entry


def test_logging_says_the_length_as_chosen_and_links_to_correct_the_contact(client, fiona, family):
    client.force_login(fiona.user)
    form = {
        "token": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "contact_date": days_ago(0).isoformat(),
        "duration_quarters": 6,
        "kind": "home_visit",
        "elements": ["home_visitation"],
        "notes": "",
    }

    response = client.post(reverse("visits:contact_new", args=[family.study_id]), form)

    contact = Contact.objects.get(family=family)
    (said,) = [str(message) for message in get_messages(response.wsgi_request)]
    assert said.startswith(f"Logged: 1 h 30 min with {family.study_id} on {days_ago(0).isoformat()}.")
    assert f'href="{reverse("visits:contact_edit", args=[contact.pk])}"' in said
    page = client.get(response.url).content.decode()
    assert f'href="{reverse("visits:contact_edit", args=[contact.pk])}"' in page  # as a link, not escaped text


# --- The week's bar -------------------------------------------------------------------------------------------


def this_week_of(profile, today):
    (row,) = selectors.partner_families(profile, today)
    return row.this_week


def test_a_week_with_nothing_logged_is_not_behind_on_its_monday(fiona, family):
    dose = this_week_of(fiona, MONDAY)

    assert (dose.quarters, dose.expected_quarters) == (0, 24)
    assert dose.level != "low"


def test_a_week_with_nothing_logged_by_thursday_is_behind(fiona, family):
    thursday = MONDAY + timedelta(days=3)

    assert this_week_of(fiona, thursday).level == "low"  # three days of six hours a week: 2.6 h expected


def test_a_week_is_judged_on_the_days_that_have_passed(fiona, family):
    thursday = MONDAY + timedelta(days=3)
    # Monday to Wednesday: 3 of 7 days of 6 h, about 2.5 h: 2 h is at least half of that, 3 h is on target.
    log_contact(family, by=fiona.user, contact_date=MONDAY, duration_quarters=8)

    dose = this_week_of(fiona, thursday)

    assert dose.expected_so_far == 10
    assert dose.level == "partial"
    assert (dose.quarters, dose.expected_quarters) == (8, 24)  # the bar still fills towards the whole week


def test_last_week_is_judged_on_the_whole_week(fiona, family):
    (row,) = selectors.partner_families(fiona, MONDAY)

    assert (row.last_week.quarters, row.last_week.expected_quarters, row.last_week.expected_so_far) == (0, 24, None)
    assert row.last_week.level == "low"


def test_the_bars_need_no_inline_style(client, alice, fiona, family):
    log_contact(family, by=fiona.user, duration_quarters=8)
    pages = {
        fiona.user: [reverse("visits:partner_home"), reverse("visits:family", args=[family.study_id])],
        alice: [reverse("families:detail", args=[family.study_id])],
    }
    for user, urls in pages.items():
        client.force_login(user)
        for url in urls:
            page = client.get(url).content.decode()
            assert "<progress" in page, url
            assert not re.search(r"\sstyle=", page), url


# --- No weeks before the intervention -------------------------------------------------------------------------


@pytest.mark.parametrize(("started_weeks_ago", "rows"), [(0, 1), (1, 2), (2, 3), (6, 4)])
def test_the_work_page_and_the_section_show_no_week_before_the_intervention(
    client, oei, alice, fiona, started_weeks_ago, rows
):
    with days_back(50):
        family = assigned_family(oei, researcher=alice, to=fiona)
    started_on(family, MONDAY - timedelta(weeks=started_weeks_ago))
    client.force_login(alice)

    work = client.get(reverse("visits:family", args=[family.study_id]))
    section = client.get(reverse("families:detail", args=[family.study_id]))

    assert [dose.in_period for dose in work.context["weeks"]] == [True] * rows
    assert work.content.decode().count("<progress") == rows
    assert "outside the intervention" not in work.content.decode()
    assert section.content.decode().count("<progress") == rows


def test_an_ended_intervention_shows_its_last_weeks(client, oei, alice, fiona):
    with days_back(60):
        family = assigned_family(oei, researcher=alice, to=fiona)
    services.intervention_end(family=family, ended_on=days_ago(30), reason="moved_away", details="", ended_by=alice)
    client.force_login(alice)

    shown = client.get(reverse("visits:family", args=[family.study_id])).context["weeks"]

    assert shown[0].week == weeks.week_of(days_ago(30))
    assert all(dose.in_period for dose in shown)
