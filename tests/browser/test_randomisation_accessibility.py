"""The randomisation's pages meet the same accessibility bar as the enrolment's (test_accessibility.py):
every control named, one heading, the page's language, and readable contrast for what they add to a family's
page (the "randomised" badge, the section's buttons)."""

import pytest
from playwright.sync_api import expect

from families.tests.factories import family_in_state
from randomization import lists, services
from tests.browser.test_accessibility import TEXT_CONTRAST, contrast, expect_accessible

pytestmark = pytest.mark.browser


def test_it_names_every_control_of_the_randomisation_pages_with_one_heading_each(
    open_page, log_in, oei, lar, alice, dina, paula
):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    consented = family_in_state("consented", site=oei, by=alice)
    randomised = family_in_state("consented", site=oei, by=alice)
    services.family_randomise(family=randomised, confirmed_site=oei, randomised_by=alice)

    researcher = open_page()
    log_in(researcher, alice)
    for name, url in {
        "randomise": f"/families/{consented.study_id}/randomise/",
        "randomised family": f"/families/{randomised.study_id}/",
        "randomised in error": f"/families/{randomised.study_id}/randomised-in-error/",
    }.items():
        researcher.goto(url)
        expect_accessible(researcher, name)

    data_manager = open_page()
    log_in(data_manager, dina)
    for name, url in {
        "allocation lists": "/randomisation/",
        "generate": "/randomisation/new/",
        "list": "/randomisation/OEI/",
        "commitment": "/randomisation/OEI/commitment/",
        "extend": "/randomisation/OEI/extend/",
        "unseal": "/randomisation/OEI/unseal/",
    }.items():
        data_manager.goto(url)
        expect_accessible(data_manager, name)

    investigator = open_page()
    log_in(investigator, paula)
    investigator.goto(f"/families/{randomised.study_id}/unblind/")
    expect_accessible(investigator, "emergency unblinding")


def test_it_shows_the_randomised_badge_and_the_sections_buttons_in_readable_contrast(
    page, log_in, oei, alice, dina, paula
):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = family_in_state("consented", site=oei, by=alice)
    services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
    log_in(page, paula)

    page.goto(f"/families/{family.study_id}/")

    targets = page.locator("main :is([data-status], [data-allocation-section] a.btn, [data-arm])")
    expect(targets.first).to_be_visible()
    assert targets.count() >= 3, "the badge, the arm and the unblinding button"
    for number in range(targets.count()):
        target = targets.nth(number)
        ratio = contrast(target)
        assert ratio >= TEXT_CONTRAST, f"{target.inner_text()!r} has contrast {ratio:.2f}:1"
