"""The family pages cost the same number of queries however many families there are and however long a
family's history is (no query per row)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from families.models import Family
from families.tests.factories import family_in_state, register_family, screen_family
from families.views import FAMILIES_PER_PAGE

# Session, user, roles, sites, the counts by status, the count and the page of families, the filter's sites, the
# arms (randomization's part of the list), the families waiting for a Family Partner (visits' part, and the
# researchers' banner), the unread count beside the menu (issue 10), the researcher's sites that are not recruiting
# (their banner, issue 11); a little room.
MAX_LIST_QUERIES = 17
# The above for the family, its household, screenings, consent, withdrawal and identifiers, plus one
# per audited model for the timeline and one each for the users and sites it names, and one for the
# randomisation's section (randomization/tests/test_queries.py counts a randomised family's page); and three for
# the follow-up section (followups.sections.SECTION_QUERIES: the schedule, a loss to follow-up, their history).
MAX_DETAIL_QUERIES = 29


def queries_of(client, url: str, **params) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def register_many(count: int, *, site, by) -> None:
    for _ in range(count):
        register_family(site=site, by=by)


@pytest.mark.parametrize("viewer", ["alice", "paula"])  # a site's researcher; the PI (all sites)
def test_it_lists_families_in_a_constant_number_of_queries(request, client, oei, alice, viewer):
    client.force_login(request.getfixturevalue(viewer))
    url = reverse("families:list")

    register_many(3, site=oei, by=alice)
    few = queries_of(client, url)

    register_many(57, site=oei, by=alice)
    assert Family.objects.count() == 60 > 2 * FAMILIES_PER_PAGE
    many = queries_of(client, url)
    last_page = queries_of(client, url, page=3)

    assert len(few) == len(many) == len(last_page), "\n".join(many)
    assert len(many) <= MAX_LIST_QUERIES


def test_it_shows_a_full_page_of_families(client, oei, alice, django_assert_max_num_queries):
    register_many(FAMILIES_PER_PAGE + 5, site=oei, by=alice)
    client.force_login(alice)

    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = client.get(reverse("families:list"))

    assert len(response.context["page"]) == FAMILIES_PER_PAGE


def rescreen(family: Family, *, times: int, by) -> Family:
    for _ in range(times):
        screen_family(Family.objects.get(pk=family.pk), by=by)
    return Family.objects.get(pk=family.pk)


@pytest.mark.parametrize("viewer", ["alice", "carol"])  # identifiers shown; identifiers hidden
def test_it_shows_a_family_in_a_constant_number_of_queries_however_long_its_history(
    request, client, oei, alice, viewer
):
    short = family_in_state("eligible", site=oei, by=alice)
    long = rescreen(family_in_state("eligible", site=oei, by=alice), times=10, by=alice)
    assert long.screenings.count() == 11
    client.force_login(request.getfixturevalue(viewer))

    for_short = queries_of(client, reverse("families:detail", args=[short.study_id]))
    for_long = queries_of(client, reverse("families:detail", args=[long.study_id]))

    assert len(for_short) == len(for_long), "\n".join(for_long)
    assert len(for_long) <= MAX_DETAIL_QUERIES


def test_it_shows_a_withdrawn_family_within_the_query_budget(client, oei, alice, django_assert_max_num_queries):
    family = family_in_state("withdrawn", site=oei, by=alice)
    client.force_login(alice)

    with django_assert_max_num_queries(MAX_DETAIL_QUERIES):
        response = client.get(reverse("families:detail", args=[family.study_id]))

    assert response.context["withdrawal"] is not None
