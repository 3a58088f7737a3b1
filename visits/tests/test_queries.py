"""The Family Partner's pages cost the same number of queries however many contacts a family has, and however
many families and Family Partners a site has (no query per contact, per family or per partner)."""

import pytest
from django.urls import reverse

from families.models import Family
from families.tests.factories import days_ago
from families.tests.test_queries import queries_of
from visits import services
from visits.models import Contact, PartnerProfile
from visits.tests.factories import assigned_family, days_back, log_contact, partner, randomised_family

# The counts measured when these tests were written, as upper bounds: a page that starts to cost more (a
# query added per row, say) fails here even where the small and the large case still agree. Every page
# pays 3 for the session (read, and saved on every request for the idle timeout), 1 for the user, and 1-2
# for roles and sites.
# Issue 10 added one to every page: the unread count beside the menu (notifications.context_processors).
MAX_PARTNER_HOME_QUERIES = 13  # one more for the families the partner had until recently (issue 9)
MAX_CONTACT_FORM_QUERIES = 10
MAX_CORRECTION_FORM_QUERIES = 10
# By viewer: the family's partner sees its identity; the PI has no site list and no slot banner.
MAX_FAMILY_WORK_QUERIES = {"fiona": 17, "alice": 17, "paula": 15}
MAX_CASELOAD_QUERIES = {"alice": 15, "paula": 12}
MAX_DOSE_QUERIES = {"alice": 19, "paula": 16}  # with the first week of any intervention (the earliest page)
# The randomised family's page (randomization.tests.test_queries) with the Family Partner's section: the
# period, the assignment and its partner, the weeks' hours, the trial settings, two timeline histories, and whether the
# family is an intervention family (randomization.selectors.is_intervention_family, the one place of that rule).
# The unread count (notifications) and the follow-up section (followups.sections: 3) included.
MAX_FAMILY_DETAIL_QUERIES = {"alice": 38, "paula": 37}

SINCE = 70  # days: each family is randomised and assigned this long ago, so its contacts fall on many days


def family_of(profile: PartnerProfile, *, researcher) -> Family:
    with days_back(SINCE):
        return assigned_family(profile.site, researcher=researcher, to=profile)


def log_contacts(family: Family, *, by, count: int, start: int = 0) -> None:
    """`count` contacts, two a day backwards from today: the i-th (from `start`) falls i // 2 days ago."""
    for i in range(start, start + count):
        log_contact(family, by=by, contact_date=days_ago(i // 2), duration_quarters=1 + i % 8, notes=f"Visit {i}")


def contacts_of(family: Family) -> int:
    return Contact.objects.filter(family=family).count()


def assert_same_and_within(few: list[str], many: list[str], limit: int) -> None:
    assert len(few) == len(many), "\n".join(many)
    assert len(many) <= limit, "\n".join(many)


@pytest.fixture
def fiona(oei):
    return partner(oei, "fiona")


# --- The Family Partner's pages ------------------------------------------------------------------------------


def test_it_shows_a_partner_their_families_in_a_constant_number_of_queries_however_many_contacts(
    client, oei, alice, fiona
):
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    client.force_login(fiona.user)
    url = reverse("visits:partner_home")
    queries_of(client, url)  # the first request of a session may set things up

    few = queries_of(client, url)
    log_contacts(family, by=fiona.user, count=57, start=3)
    assert contacts_of(family) == 60
    many = queries_of(client, url)

    assert_same_and_within(few, many, MAX_PARTNER_HOME_QUERIES)


def test_it_shows_a_partner_their_families_in_a_constant_number_of_queries_however_many_families(
    client, oei, alice, fiona
):
    log_contacts(family_of(fiona, researcher=alice), by=fiona.user, count=3)
    client.force_login(fiona.user)
    url = reverse("visits:partner_home")
    queries_of(client, url)

    few = queries_of(client, url)
    for _ in range(4):
        log_contacts(family_of(fiona, researcher=alice), by=fiona.user, count=6)
    fiona.refresh_from_db()
    assert fiona.active_families == 5
    many = queries_of(client, url)

    assert_same_and_within(few, many, MAX_PARTNER_HOME_QUERIES)
    assert len(queries_of(client, url)) == len(many)


@pytest.mark.parametrize("viewer", ["fiona", "alice", "paula"])  # the family's partner; its researcher; the PI
def test_it_shows_a_familys_work_in_a_constant_number_of_queries_however_many_contacts(
    request, client, oei, alice, paula, fiona, viewer
):
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    client.force_login(fiona.user if viewer == "fiona" else request.getfixturevalue(viewer))
    url = reverse("visits:family", args=[family.study_id])
    queries_of(client, url)

    few = queries_of(client, url)
    log_contacts(family, by=fiona.user, count=57, start=3)
    many = queries_of(client, url)
    last_page = queries_of(client, url, page=3)

    assert_same_and_within(few, many, MAX_FAMILY_WORK_QUERIES[viewer])
    assert len(last_page) == len(many)


def test_it_shows_the_contact_form_in_a_constant_number_of_queries_however_many_contacts(client, oei, alice, fiona):
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    client.force_login(fiona.user)
    url = reverse("visits:contact_new", args=[family.study_id])
    queries_of(client, url)

    few = queries_of(client, url)
    log_contacts(family, by=fiona.user, count=57, start=3)
    many = queries_of(client, url)

    assert_same_and_within(few, many, MAX_CONTACT_FORM_QUERIES)


def test_it_shows_the_correction_form_in_a_constant_number_of_queries_however_many_contacts(client, oei, alice, fiona):
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    contact = Contact.objects.filter(family=family).first()
    client.force_login(fiona.user)
    url = reverse("visits:contact_edit", args=[contact.pk])
    queries_of(client, url)

    few = queries_of(client, url)
    log_contacts(family, by=fiona.user, count=57, start=3)
    many = queries_of(client, url)

    assert_same_and_within(few, many, MAX_CORRECTION_FORM_QUERIES)


# --- Researchers and the PI -----------------------------------------------------------------------------------


def grow_the_site(site, *, researcher, first: PartnerProfile, first_family: Family) -> None:
    """From one partner with one family (three contacts) to four partners with five families and 60 contacts
    on the first family, and a second family waiting."""
    log_contacts(first_family, by=first.user, count=57, start=3)
    others = [partner(site, f"partner{i}") for i in range(3)]
    for profile in others:
        log_contacts(family_of(profile, researcher=researcher), by=profile.user, count=4)
    log_contacts(family_of(others[0], researcher=researcher), by=others[0].user, count=4)
    with days_back(3):
        randomised_family(site, researcher=researcher)
    assert PartnerProfile.objects.filter(site=site).count() == 4
    assert sum(PartnerProfile.objects.filter(site=site).values_list("active_families", flat=True)) == 5


@pytest.fixture
def small_site(oei, lar, alice, bob, fiona) -> Family:
    """Øvre Eiker with one partner, one family with three contacts, one family waiting; Larvik alike."""
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    with days_back(5):
        randomised_family(oei, researcher=alice)
    lars = partner(lar, "lars")
    log_contacts(family_of(lars, researcher=bob), by=lars.user, count=3)
    return family


@pytest.mark.parametrize("viewer", ["alice", "paula"])  # a site's researcher (manages it); the PI (all sites)
@pytest.mark.parametrize(
    ("page", "limits"), [("visits:caseload", MAX_CASELOAD_QUERIES), ("visits:dose", MAX_DOSE_QUERIES)]
)
def test_it_shows_caseloads_and_hours_in_a_constant_number_of_queries_however_many_families_and_partners(
    request, client, oei, alice, fiona, small_site, viewer, page, limits
):
    client.force_login(request.getfixturevalue(viewer))
    url = reverse(page)
    queries_of(client, url)

    few = queries_of(client, url)
    grow_the_site(oei, researcher=alice, first=fiona, first_family=small_site)
    many = queries_of(client, url)

    assert_same_and_within(few, many, limits[viewer])


def test_it_shows_a_sites_hours_in_a_constant_number_of_queries_for_any_site_and_weeks(
    client, oei, alice, paula, fiona, small_site
):
    grow_the_site(oei, researcher=alice, first=fiona, first_family=small_site)
    client.force_login(paula)
    url = reverse("visits:dose")

    counts = {
        len(queries_of(client, url, **params))
        for params in [{}, {"site": "OEI"}, {"site": "LAR"}, {"until": days_ago(21).strftime("%G-W%V")}]
    }

    assert len(counts) == 1
    assert counts.pop() <= MAX_DOSE_QUERIES["paula"]


# --- The family page ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewer", ["alice", "paula"])
def test_it_shows_an_assigned_family_in_a_constant_number_of_queries_however_many_contacts_and_partners(
    request, client, oei, alice, fiona, viewer
):
    family = family_of(fiona, researcher=alice)
    log_contacts(family, by=fiona.user, count=3)
    client.force_login(request.getfixturevalue(viewer))
    url = reverse("families:detail", args=[family.study_id])
    queries_of(client, url)

    few = queries_of(client, url)
    log_contacts(family, by=fiona.user, count=57, start=3)
    for i in range(3):  # three changes of Family Partner: the timeline grows
        services.family_assign(
            family=family,
            partner=partner(oei, f"partner{i}"),
            started_on=days_ago(30 - i),
            assigned_by=alice,
            reason=f"Change {i}",
        )
    many = queries_of(client, url)

    assert_same_and_within(few, many, MAX_FAMILY_DETAIL_QUERIES[viewer])
