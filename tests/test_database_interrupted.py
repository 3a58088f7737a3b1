"""A request whose database connection fails under it gets a 503 that says nothing was saved (trial/errors.py), and
indeed nothing of it was saved: the service's transaction rolled back."""

from unittest import mock

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.test import Client

from api.tests.helpers import api_as
from families.models import Family, FamilyStatus
from randomization.models import Allocation, AllocationList
from randomization.tests.factories import allocation_list_for, ready_to_randomise

INTERRUPTED = "The database connection was interrupted. Nothing was saved; please try again."
# What psycopg2 raises when an administrator (or a failover) ends the session in the middle of a statement.
TERMINATED = OperationalError("terminating connection due to administrator command")


def _connection_lost_after_the_claim(error: Exception):
    """The randomisation fails after the family was claimed and the list's row updated, before the allocation."""
    return mock.patch("randomization.services._allocate", side_effect=error)


def _ready_to_randomise(oei, alice, dina) -> tuple[Family, Client]:
    """A family ready to randomise at OEI, and alice's browser, which sees a server error as the user does."""
    allocation_list_for(oei, by=dina)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return ready_to_randomise(oei, by=alice), client


def _randomise(client: Client, family: Family):
    return client.post(f"/families/{family.study_id}/randomise/", {"site": "OEI", "confirm": "on"})


@pytest.mark.parametrize("error", [TERMINATED, InterfaceError("connection already closed")])
def test_it_answers_the_api_with_a_503_problem_and_saves_nothing(oei, alice, dina, error):
    allocation_list_for(oei, by=dina)
    family = ready_to_randomise(oei, by=alice)
    api = api_as(alice, "randomise")
    api.client.raise_request_exception = False

    with _connection_lost_after_the_claim(error):
        answer = api.post("/api/v1/randomisations/", {"study_id": family.study_id, "site": "OEI"})

    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/problem+json"
    assert answer["Retry-After"] == "5"
    assert answer.json() == {
        "type": "urn:family-partner:problem:database-interrupted",
        "title": "Service Unavailable",
        "status": 503,
        "detail": INTERRUPTED,
        "instance": "/api/v1/randomisations/",
    }
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert not Allocation.objects.exists()
    assert AllocationList.objects.get().used == 0


def test_it_answers_a_page_with_the_503_page_and_saves_nothing(oei, alice, dina):
    family, client = _ready_to_randomise(oei, alice, dina)

    with _connection_lost_after_the_claim(TERMINATED):
        page = _randomise(client, family)

    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/html")
    assert INTERRUPTED in page.content.decode()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert not Allocation.objects.exists()
    # Trying again, with the database back, randomises the family once.
    again = _randomise(client, family)
    assert again.status_code == 302
    assert Allocation.objects.filter(family=family).count() == 1


@pytest.mark.parametrize(
    "error",
    # A bug; and a database error on a connection that still works (a wrong query of ours) is a bug too.
    [RuntimeError("a bug"), DatabaseError("a query of ours that is wrong")],
)
def test_a_bug_is_still_the_500_page(oei, alice, dina, error):
    family, client = _ready_to_randomise(oei, alice, dina)

    with _connection_lost_after_the_claim(error):
        page = _randomise(client, family)

    assert page.status_code == 500
    assert INTERRUPTED not in page.content.decode()


def test_it_does_not_say_nothing_was_saved_when_the_connection_is_lost_after_the_commit(
    transactional_db, oei, alice, dina
):
    """The randomisation commits; the connection is lost while the answer is being made (here: the receipt's
    message). The 503 must not promise that nothing was saved."""
    family, client = _ready_to_randomise(oei, alice, dina)

    with mock.patch("randomization.views._arm_message", side_effect=TERMINATED):
        page = _randomise(client, family)

    assert page.status_code == 503
    assert INTERRUPTED not in page.content.decode()
    assert "after your change was saved" in page.content.decode()
    assert Allocation.objects.filter(family=family).count() == 1


@pytest.mark.parametrize(
    "error",
    [
        # psycopg2 raises a plain DatabaseError for some ways a connection dies (no message from libpq).
        DatabaseError("error with status PGRES_TUPLES_OK and no message from the libpq"),
        # A bug of ours, raised while the lost connection was being handled, is still the lost connection.
        RuntimeError("raised while handling it"),
    ],
)
def test_a_connection_that_died_otherwise_is_still_the_503_and_saves_nothing(transactional_db, oei, alice, dina, error):
    family, client = _ready_to_randomise(oei, alice, dina)

    def die(*args, **kwargs):
        connection.close()
        if isinstance(error, RuntimeError):
            try:
                raise TERMINATED
            except OperationalError:
                raise error  # noqa: B904 (the context is the point)
        raise error

    with _connection_lost_after_the_claim(die):
        page = _randomise(client, family)

    assert page.status_code == 503
    assert INTERRUPTED in page.content.decode()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert not Allocation.objects.exists()
