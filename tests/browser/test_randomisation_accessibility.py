"""The randomisation's pages meet the same accessibility bar as the enrolment's (test_accessibility.py):
every control named, one heading, the page's language, and readable contrast for what they add to a family's
page (the "randomised" badge, the section's buttons)."""

import pytest
from playwright.sync_api import expect

from families.tests.factories import family_in_state
from randomization import lists, services
from randomization.models import AllocationEntry
from randomization.tests.factories import ready_to_randomise
from randomization.tests.tampering import trigger_off
from tests.browser.test_accessibility import TEXT_CONTRAST, contrast, expect_accessible

pytestmark = pytest.mark.browser


def test_it_names_every_control_of_the_randomisation_pages_with_one_heading_each(
    open_page, log_in, oei, lar, alice, carol, dina, paula
):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    consented = family_in_state("consented", site=oei, by=alice)
    randomised = ready_to_randomise(oei, by=alice)
    services.family_randomise(family=randomised, confirmed_site=oei, randomised_by=alice)

    researcher = open_page()
    log_in(researcher, alice)
    for name, url in {
        "randomise": f"/families/{consented.study_id}/randomise/",
        "randomised family": f"/families/{randomised.study_id}/",
        "randomisation receipt": f"/families/{randomised.study_id}/randomisation-receipt/",
        "randomised in error": f"/families/{randomised.study_id}/randomised-in-error/",
        "recruitment": "/recruitment/",
    }.items():
        researcher.goto(url)
        expect_accessible(researcher, name)
    researcher.goto(f"/families/{randomised.study_id}/randomised-in-error/")
    researcher.locator("main textarea").fill("Consent withdrawn by phone")
    researcher.locator("main form button[type=submit]").click()
    expect(researcher.locator("[data-confirmation]")).to_be_visible()
    expect_accessible(researcher, "randomised in error, confirmation")

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

    data_manager.goto("/randomisation/new/")
    data_manager.locator("main form button[type=submit]").first.click()
    expect(data_manager.locator("[data-confirmation]")).to_be_visible()
    expect_accessible(data_manager, "generate, confirmation")
    entry = AllocationEntry.objects.get(allocation_list__site=oei, position=9)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(pk=entry.pk).update(
            sealed_arm="control" if entry.sealed_arm == "intervention" else "intervention"
        )
    lists.allocation_list_verify(allocation_list=entry.allocation_list, verified_by=dina)
    for name, url in {
        "stopped list": "/randomisation/OEI/",
        "record what was found": "/randomisation/OEI/review/",
    }.items():
        data_manager.goto(url)
        expect_accessible(data_manager, name)

    investigator = open_page()
    log_in(investigator, paula)
    investigator.goto(f"/families/{randomised.study_id}/unblind/")
    expect_accessible(investigator, "emergency unblinding")
    investigator.locator("main select").select_option(index=1)
    investigator.locator("main textarea").fill("Serious adverse event")
    investigator.locator("main form button[type=submit]").click()
    expect(investigator.locator("[data-confirmation]")).to_be_visible()
    expect_accessible(investigator, "emergency unblinding, confirmation")


def test_it_shows_the_randomised_badge_and_the_sections_buttons_in_readable_contrast(
    page, log_in, oei, alice, dina, paula
):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = ready_to_randomise(oei, by=alice)
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
