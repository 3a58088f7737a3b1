"""The Family Partner's pages meet the bar of the other pages (test_accessibility.py): every control named, one
heading, the page's language; the weekly hours' coloured cells, the week bars' labels and the waiting-list banner
in readable contrast; and on a phone the partner's buttons are tap targets of at least 44 pixels."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_accessibility import TEXT_CONTRAST, contrast, expect_accessible
from visits.tests.factories import assigned_family, days_back, log_contact, partner, randomised_family

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def worked(oei, alice):
    """A partner with a family whose intervention started four weeks ago, with a contact then (a coloured,
    finished week), and a family waiting for a partner (the banner)."""
    fiona = partner(oei, "fiona", first_name="Fiona", last_name="Fjell")
    with days_back(28):
        family = assigned_family(oei, researcher=alice, to=fiona)
        contact = log_contact(family, by=fiona.user, duration_quarters=8, notes="Good visit")
    randomised_family(oei, researcher=alice)
    return fiona, family, contact


def test_it_names_every_control_of_the_family_partner_pages_with_one_heading_each(
    open_page, log_in, alice, paula, worked
):
    fiona, family, contact = worked
    researcher = open_page()
    log_in(researcher, alice)
    for name, url in {
        "caseload": "/caseload/",
        "weekly hours": "/caseload/weeks/",
        "family page": f"/families/{family.study_id}/",
        "family work": f"/partner/families/{family.study_id}/",
        "change partner": f"/families/{family.study_id}/family-partner/",
        "end intervention": f"/families/{family.study_id}/end-intervention/",
    }.items():
        researcher.goto(url)
        expect_accessible(researcher, name)

    partner_page = open_page()
    log_in(partner_page, fiona.user)
    for name, url in {
        "my families": "/partner/",
        "family work (partner)": f"/partner/families/{family.study_id}/",
        "log a contact": f"/partner/families/{family.study_id}/contacts/new/",
        "correct a contact": f"/partner/contacts/{contact.pk}/",
        "void a contact": f"/partner/contacts/{contact.pk}/void/",
    }.items():
        partner_page.goto(url)
        expect_accessible(partner_page, name)


def test_it_shows_the_weekly_hours_and_the_banner_in_readable_contrast(page, log_in, alice, worked):
    log_in(page, alice)

    page.goto("/caseload/weeks/")

    targets = page.locator(
        "main :is(td.dose-on-target, td.dose-partial, td.dose-low, td.dose-current, [data-slot-alert])"
    )
    expect(targets.first).to_be_visible()
    assert page.locator("td.dose-partial, td.dose-low, td.dose-on-target").count() >= 1, "a finished, coloured week"
    for number in range(targets.count()):
        target = targets.nth(number)
        ratio = contrast(target)
        assert ratio >= TEXT_CONTRAST, f"{target.inner_text()!r} has contrast {ratio:.2f}:1"


def test_it_gives_the_family_partner_big_enough_buttons_on_a_phone(open_page, log_in, worked):
    fiona, family, contact = worked
    phone = open_page(viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(phone, fiona.user)

    for url, selector in [
        ("/partner/", "main a.btn"),
        (f"/partner/families/{family.study_id}/", "main a.btn"),
        (f"/partner/families/{family.study_id}/contacts/new/", "main :is(button, .form-check-label)"),
        (f"/partner/contacts/{contact.pk}/void/", "main :is(button, a.btn)"),
    ]:
        phone.goto(url)
        targets = phone.locator(selector)
        assert targets.count() >= 1, url
        for number in range(targets.count()):
            box = targets.nth(number).bounding_box()
            assert box is not None and box["height"] >= 44, f"{url}: {targets.nth(number).inner_text()!r} is {box}"
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{url} scrolls sideways"
