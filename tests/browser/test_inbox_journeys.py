"""Messages in a real browser, in both languages: a Family Partner on a phone sees the unread count, reads a
reminder in the inbox, follows its link, and the count goes down; a user sets their e-mail address and the language
of their messages; a data manager cancels a pending message in the send log.

The partner's reminder is the real one an assignment makes ("a new family"); the other messages are of kinds the
tests register (notifications/tests/factories.py).
Expected texts of the pages come from the catalogue with gettext: where a string has no Norwegian text yet, the page
shows the English one, and so does gettext."""

import re

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from notifications.models import Message, MessageStatus, Preference
from notifications.tests.factories import OTHER_KIND, send_message
from reminders.services import NEW_FAMILY
from tests.browser.test_accessibility import expect_one_h1_main_and_language, unnamed_controls
from trial.tests.factories import PASSWORD
from visits.tests.factories import assigned_family, partner

pytestmark = pytest.mark.browser

LOCALES = {"nb-NO": "nb", "en-GB": "en"}
PHONE = {"width": 390, "height": 844}
TARGET = 44  # pixels: a finger's tap target on a phone


def in_language(language: str, text) -> str:
    with translation.override(language):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def unread_messages(language: str, count: int) -> str:
    with translation.override(language):
        return translation.ngettext("unread message", "unread messages", count)


def log_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/accounts/login/" not in page.url, f"{username} could not log in"


def tap(page: Page, target) -> None:
    with page.expect_navigation():
        target.tap()


def expect_accessible(page: Page, language: str, name: str) -> None:
    assert not unnamed_controls(page), f"controls without a name on the {name} page"
    expect_one_h1_main_and_language(page, language)


def expect_big_targets(page: Page, selector: str) -> None:
    targets = page.locator(selector)
    assert targets.count() >= 1, f"{page.url}: no {selector}"
    for number in range(targets.count()):
        box = targets.nth(number).bounding_box()
        assert box is not None and box["height"] >= TARGET, f"{page.url}: {targets.nth(number).inner_text()!r} {box}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{page.url} scrolls sideways"


@pytest.mark.parametrize("locale", list(LOCALES))
def test_a_family_partner_reads_a_reminder_on_a_phone_and_the_count_goes_down(open_page, oei, alice, locale):
    language = LOCALES[locale]
    fiona_profile = partner(oei, "fiona", first_name="Fiona", last_name="Fjell")
    fiona = fiona_profile.user
    older = send_message(fiona, study_id="OEI-003", site=oei, kind=OTHER_KIND.code)
    # A real message: assigning a family tells its Family Partner (reminders.events), in the assignment's transaction.
    family = assigned_family(oei, researcher=alice, to=fiona_profile)
    reminder = Message.objects.get(recipient=fiona, kind=NEW_FAMILY)
    Message.objects.filter(pk=older.pk).update(created_at=reminder.created_at.replace(year=2025))
    phone = open_page(locale=locale, viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(phone, "fiona")

    # The count shows beside the menu, without opening it, as a big enough target.
    inbox_link = phone.locator("[data-inbox-link]")
    expect(inbox_link).to_be_visible()
    expect(inbox_link.locator("[data-unread-count]")).to_have_text("2")
    expect_big_targets(phone, "[data-inbox-link]")
    expect(inbox_link).to_have_accessible_name(
        re.compile(rf"{re.escape(in_language(language, 'Inbox'))}\s*2\s*{re.escape(unread_messages(language, 2))}")
    )
    tap(phone, inbox_link)

    expect(phone.get_by_role("heading", level=1)).to_have_text(in_language(language, "Inbox"))
    expect_accessible(phone, language, "inbox")
    expect_big_targets(phone, "main :is(a.inbox-item, button)")
    subject = in_language(language, "A new family for you")
    items = phone.locator("[data-inbox] > li")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text(subject)  # the newest first
    expect(phone.locator("[data-unread]")).to_have_count(2)
    tap(phone, phone.get_by_role("link", name=re.compile(re.escape(subject))))

    expect(phone.get_by_role("heading", level=1)).to_have_text(subject)
    # The study ID and the site, never a name (the partner may see the family's name, but mail is not the place).
    expect(phone.locator("[data-message-body]")).to_contain_text(f"{family.study_id} ({oei.code})")
    expect(phone.locator("[data-message-body]")).not_to_contain_text("Fjell")
    expect_accessible(phone, language, "message")
    expect_big_targets(phone, "main :is(a.btn, button)")
    expect(phone.locator("[data-unread-count]")).to_have_text("1")
    tap(phone, phone.get_by_role("link", name=in_language(language, "Go to the page")))

    expect(phone).to_have_url(re.compile(rf"/partner/families/{family.study_id}/$"))
    expect(phone.locator("[data-unread-count]")).to_have_text("1")
    tap(phone, phone.locator("[data-inbox-link]"))
    expect(phone.locator("[data-unread]")).to_have_count(1)
    reminder.refresh_from_db()
    assert reminder.read_at is not None
    older.refresh_from_db()
    assert older.read_at is None


@pytest.mark.parametrize("locale", list(LOCALES))
def test_a_user_sets_their_address_and_the_language_of_their_messages(open_page, alice, locale):
    language = LOCALES[locale]
    page = open_page(locale=locale)
    log_in(page, "alice")

    page.locator("nav .dropdown-toggle").click()
    with page.expect_navigation():
        page.get_by_role("link", name=in_language(language, "Profile and messages")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(in_language(language, "Profile and messages"))
    expect_accessible(page, language, "profile")
    address = page.get_by_label(re.compile(re.escape(in_language(language, "Your e-mail address"))))
    messages_language = page.get_by_label(re.compile(re.escape(in_language(language, "Language of your messages"))))
    expect(messages_language).to_have_value("nb")

    address.fill("alice@oei")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    expect(page.locator("main .invalid-feedback, main .alert-danger").first).to_be_visible()

    page.get_by_label(re.compile(re.escape(in_language(language, "Your e-mail address")))).fill("alice@example.no")
    page.get_by_label(re.compile(re.escape(in_language(language, "Language of your messages")))).select_option("en")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()

    expect(page.locator(".alert-success")).to_have_text(in_language(language, "Your profile is saved."))
    expect(page.get_by_label(re.compile(re.escape(in_language(language, "Your e-mail address"))))).to_have_value(
        "alice@example.no"
    )
    alice.refresh_from_db()
    assert alice.email == "alice@example.no"
    assert Preference.objects.get(user=alice).language == "en"


@pytest.mark.parametrize("locale", list(LOCALES))
def test_a_data_manager_cancels_a_pending_message_in_the_send_log(open_page, dina, frank, oei, locale):
    language = LOCALES[locale]
    pending = send_message(frank, study_id="OEI-004", site=oei)
    sent = send_message(frank, study_id="OEI-005", site=oei, status=MessageStatus.SENT)
    page = open_page(locale=locale)
    log_in(page, "dina")

    with page.expect_navigation():
        page.get_by_role("link", name=in_language(language, "Send log"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(in_language(language, "Send log"))
    expect_accessible(page, language, "send log")
    page.get_by_label(in_language(language, "Status"), exact=True).select_option("pending")
    with page.expect_navigation():
        page.get_by_role("button", name=in_language(language, "Filter")).click()
    expect(page.locator("[data-log-row]")).to_have_count(1)
    row = page.locator(f'[data-log-row="{pending.pk}"]')
    expect(row).to_contain_text("OEI-004")
    expect(row).to_contain_text("frank")
    with page.expect_navigation():
        row.get_by_role("link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(in_language(language, "Cancel a message"))
    expect_accessible(page, language, "cancel")
    page.get_by_label(re.compile(re.escape(in_language(language, "Why is it cancelled?")))).fill(
        "The assessment was booked by phone"
    )
    with page.expect_navigation():
        page.get_by_role("button", name=in_language(language, "Cancel the message")).click()

    expect(page.locator(".alert-success")).to_have_text(
        in_language(language, "The message is cancelled: it will not be sent.")
    )
    row = page.locator(f'[data-log-row="{pending.pk}"]')
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(row).to_contain_text("The assessment was booked by phone")
    expect(page.locator(f'[data-log-row="{sent.pk}"] a')).to_have_count(0)
    pending.refresh_from_db()
    assert pending.status == MessageStatus.CANCELLED and pending.cancelled_by == dina
