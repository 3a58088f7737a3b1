"""Follow-up journeys, clicked through in a real browser, in Norwegian and in English: an assessor opens the grid, finds
an overdue assessment (of which a reminder waits in the inbox), books it, records it as completed (confirming the
date outside its window) and sees its cell turn completed and its reminder leave the inbox; a researcher is told on
the randomise page that the baseline comes first, an assessor records it, and the researcher then randomises.

Each grid cell and worklist row carries the assessment's stable id (`id="assessment-<pk>"`,
`data-assessment-id`), for the reminders' journey to follow.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from playwright.sync_api import Page, expect

from families.tests.factories import family_in_state
from followups.models import Assessment, BlindingGuess
from followups.states import State
from notifications.models import Message, MessageStatus
from notifications.selectors import unread_count
from notifications.services import message_deliver
from randomization import lists
from randomization.models import Allocation
from reminders.services import MISSED, sweep
from tests.browser.conftest import NORWEGIAN_BROWSER
from tests.browser.test_enrolment_journeys import field
from visits.tests.factories import days_back, randomised_family

pytestmark = pytest.mark.browser

BROWSERS = {"nb": NORWEGIAN_BROWSER, "en": "en-GB"}


@pytest.fixture(params=list(BROWSERS))
def language(request) -> str:
    return request.param


def say(language: str, text) -> str:
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def typed(language: str, day) -> str:
    return day.strftime("%d.%m.%Y") if language == "nb" else day.isoformat()


def cell(page: Page, assessment: Assessment):
    return page.locator(f"#assessment-{assessment.pk}")


def test_an_assessor_books_and_records_an_overdue_assessment_from_the_grid(
    open_page, log_in, oei, alice, carol, results_dir, language
):
    # Randomised 150 days ago; the 3-month window (moved by a schedule correction) closed yesterday, so this
    # morning's sweep reminded the assessor that it was missed.
    with days_back(150):
        family = randomised_family(oei, researcher=alice)
    today = timezone.localdate()
    Assessment.objects.filter(family=family, months=3).update(
        opens_on=today - timedelta(days=43), target_on=today - timedelta(days=29), closes_on=today - timedelta(days=1)
    )
    three = Assessment.objects.get(family=family, months=3)
    sweep(today)
    reminder = Message.objects.get(about=f"assessment:{three.pk}", recipient=carol, kind=MISSED)
    assert message_deliver(reminder.pk) == MessageStatus.SENT

    page = open_page(locale=BROWSERS[language])
    log_in(page, carol)
    # The assessor's home is the worklist, where the overdue assessment waits; the reminder is in the inbox.
    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "My worklist"))
    unread = unread_count(carol)  # the sweep's other reminders of the day count too
    expect(page.locator("[data-unread-count]")).to_have_text(str(unread))
    expect(page.locator(f'[data-worklist="overdue"] [data-assessment-id="{three.pk}"]')).to_be_visible()
    page.get_by_role("link", name=say(language, "All follow-up assessments")).click()

    # The grid, filtered to what is overdue: the family's 3-month cell says so in words, not colour alone.
    page.get_by_label(say(language, "State")).select_option(State.OVERDUE.value)
    page.get_by_role("button", name=say(language, "Show")).click()
    expect(cell(page, three)).to_have_attribute("data-state", State.OVERDUE.value)
    expect(cell(page, three)).to_contain_text(say(language, State.OVERDUE.label))
    page.screenshot(path=results_dir / f"journey-followup-grid-overdue-{language}.png", full_page=True)
    cell(page, three).get_by_role("link").click()

    # Booking.
    expect(page.get_by_role("heading", level=1)).to_contain_text(family.study_id)
    booked_on = today + timedelta(days=2)
    page.get_by_label(field(say(language, "Booked for"))).fill(typed(language, booked_on))
    page.get_by_role("button", name=say(language, "Save the booking")).click()
    expect(page.get_by_role("status")).to_contain_text(say(language, "The assessment is booked."))
    expect(page.locator("[data-booked-on]")).to_have_text(
        booked_on.strftime("%d.%m.%Y") if language == "nb" else re.compile(r".+")
    )
    assert Assessment.objects.get(pk=three.pk).booked_on == booked_on

    # Recording, today: outside the window, so a second submit with the box ticked.
    form = page.locator("[data-record-form]")
    form.get_by_label(say(language, "completed"), exact=True).check()
    form.get_by_label(field(say(language, "Date"))).fill(typed(language, today))
    form.get_by_label(say(language, "home visit"), exact=True).check()
    form.get_by_label("SDQ", exact=True).check()
    form.get_by_label(say(language, "Don't know"), exact=True).check()
    form.get_by_role("button", name=say(language, "Record")).click()
    confirmation = page.locator("[data-outside-window-confirmation]")
    expect(confirmation).to_be_visible()
    assert Assessment.objects.get(pk=three.pk).status == "scheduled", "nothing is recorded before the confirmation"
    confirmation.get_by_role("checkbox").check()
    page.locator("[data-record-form]").get_by_role("button", name=say(language, "Record")).click()

    # Back on the grid (with its filter): the cell has turned completed.
    expect(page).to_have_url(re.compile(r"/followups/\?.*state=overdue"))
    expect(page.get_by_role("status")).to_contain_text(family.study_id)
    page.get_by_label(say(language, "State")).select_option("")
    page.get_by_role("button", name=say(language, "Show")).click()
    expect(cell(page, three)).to_have_attribute("data-state", State.COMPLETED.value)
    expect(cell(page, three)).to_contain_text(say(language, State.COMPLETED.label))
    page.screenshot(path=results_dir / f"journey-followup-grid-completed-{language}.png", full_page=True)
    # Its reminder has left the inbox: one unread message fewer, and the inbox lists it no more.
    if unread > 1:
        expect(page.locator("[data-unread-count]")).to_have_text(str(unread - 1))
    else:
        expect(page.locator("[data-unread-count]")).to_have_count(0)
    page.locator("[data-inbox-link]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(say(language, "Inbox"))
    expect(page.locator(f'[data-message="{reminder.pk}"]')).to_have_count(0)
    recorded = Assessment.objects.get(pk=three.pk)
    assert (recorded.status, recorded.outside_window, recorded.mode) == ("completed", True, "home_visit")
    assert BlindingGuess.objects.get(assessment=recorded).guess == "dont_know"
    assert "dont_know" not in page.content()


def test_the_baseline_comes_before_the_randomisation(open_page, log_in, oei, alice, carol, dina, language):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = family_in_state("consented", site=oei, by=alice)
    researcher = open_page(locale=BROWSERS[language])
    log_in(researcher, alice)
    researcher.goto(f"/families/{family.study_id}/randomise/")
    expect(researcher.locator("[data-randomisation-refusals]")).to_contain_text(family.study_id)
    expect(researcher.get_by_role("button", name=say(language, "Randomise now"))).to_have_count(0)

    assessor = open_page(locale=BROWSERS[language])
    log_in(assessor, carol)
    assessor.goto(f"/families/{family.study_id}/")
    assessor.locator("[data-followup-section]").get_by_role("link", name=say(language, "baseline").capitalize()).click()
    form = assessor.locator("[data-record-form]")
    form.get_by_label(say(language, "completed"), exact=True).check()
    form.get_by_label(field(say(language, "Date"))).fill(typed(language, timezone.localdate() - timedelta(days=1)))
    form.get_by_label(say(language, "phone"), exact=True).check()
    form.get_by_label("SDQ", exact=True).check()
    form.get_by_role("button", name=say(language, "Record")).click()
    expect(assessor.get_by_role("status")).to_contain_text(family.study_id)

    researcher.reload()
    expect(researcher.locator("[data-randomisation-refusals]")).to_have_count(0)
    confirm = say(
        language, "I have checked that this is family %(study_id)s, recruited at %(site)s (stratum %(code)s)."
    )
    researcher.get_by_label(field(confirm % {"study_id": family.study_id, "site": oei.name, "code": oei.code})).check()
    researcher.get_by_role("button", name=say(language, "Randomise now")).click()
    expect(researcher).to_have_url(re.compile(r"randomisation-receipt/$"))
    assert Allocation.objects.filter(family=family).exists()
