"""The assignment page as researchers use it: whatever the form carries, a clear answer and never a 500; the
partner the family already has is always the existing assignment; a reason only when the partner changes."""

import uuid

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from families import services as family_services
from families.tests.factories import days_ago
from randomization import services as randomisation
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services
from visits.models import Assignment, InterventionPeriod, PartnerProfile
from visits.tests.factories import randomised_family

EXPIRED = "The form has expired; reload the page."
CONFIRM_IN_ERROR = "Tick the box to confirm that this family gets a Family Partner although it was randomised in error."


@pytest.fixture
def rolf(oei):
    """A second researcher at Øvre Eiker, in another browser."""
    return UserFactory(username="rolf", roles=[Role.RESEARCHER], sites=[oei])


def assign_url(family) -> str:
    return reverse("visits:assign", args=[family.study_id])


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_errors(response) -> list[str]:
    form = response.context["form"]
    return [str(error) for errors in form.errors.values() for error in errors]


# --- Hostile input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shown",
    [
        "²",  # str.isdigit() says yes, int() says no
        "\u0663",  # an Arabic-Indic three: int() reads it as 3
        "9" * 5000,  # int() refuses more than 4,300 digits
        "9" * 40,  # more than any assignment's key
        "-1",
        "1e3",
        "none please",
    ],
)
def test_a_tampered_shown_field_is_a_form_error_and_assigns_nothing(client, oei, alice, fiona, shown):
    family = randomised_family(oei, researcher=alice)
    client.force_login(alice)

    response = client.post(
        assign_url(family), {"partner": fiona.pk, "started_on": days_ago(0).isoformat(), "shown": shown}
    )

    assert response.status_code == 200
    assert form_errors(response) == [EXPIRED]
    assert EXPIRED in response.content.decode()
    assert not Assignment.objects.filter(family=family).exists()
    assert PartnerProfile.objects.get(pk=fiona.pk).active_families == 0


@pytest.mark.parametrize("shown", ["none", " none ", ""])
def test_the_shown_field_takes_none_or_nothing_for_a_family_without_a_partner(client, oei, alice, fiona, shown):
    family = randomised_family(oei, researcher=alice)
    client.force_login(alice)

    response = client.post(
        assign_url(family), {"partner": fiona.pk, "started_on": days_ago(0).isoformat(), "shown": shown}
    )

    assert response.status_code == 302
    assert Assignment.objects.get(family=family).partner == fiona


# --- The partner the family already has -----------------------------------------------------------------------


def test_a_colleague_posting_the_same_assignment_after_it_was_made_gets_the_existing_one(
    client, oei, alice, rolf, fiona
):
    """Two researchers opened the waiting family's page; alice assigned Fiona first. rolf's identical form,
    posted afterwards, is the same decision: he is told Fiona is the partner, not asked why she changes."""
    family = randomised_family(oei, researcher=alice)
    form = {"partner": fiona.pk, "started_on": days_ago(0).isoformat(), "shown": "none"}
    client.force_login(alice)
    assert client.post(assign_url(family), form).status_code == 302
    rolfs_browser = Client()
    rolfs_browser.force_login(rolf)

    response = rolfs_browser.post(assign_url(family), form)

    assert response.status_code == 302
    assert response.url == reverse("families:detail", args=[family.study_id])
    assert said(response) == [f"{family.study_id} already has {fiona} as Family Partner."]
    assert Assignment.objects.filter(family=family).count() == 1
    assert InterventionPeriod.objects.filter(family=family).count() == 1


@pytest.mark.parametrize("shown", ["none", "", "current", "999999"])
@pytest.mark.parametrize("reason", ["", "   ", "Fiona moves away"])
def test_posting_the_partner_the_family_has_is_the_existing_assignment_whatever_shown_and_reason_say(
    client, oei, alice, fiona, shown, reason
):
    family = randomised_family(oei, researcher=alice)
    existing = services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)
    client.force_login(alice)
    history = Assignment.history.count()

    response = client.post(
        assign_url(family),
        {
            "partner": fiona.pk,
            "started_on": days_ago(0).isoformat(),
            "shown": str(existing.assignment.pk) if shown == "current" else shown,
            "reason": reason,
        },
    )

    assert response.status_code == 302
    assert said(response) == [f"{family.study_id} already has {fiona} as Family Partner."]
    assert list(Assignment.objects.filter(family=family)) == [existing.assignment]
    assert Assignment.history.count() == history


def test_changing_the_partner_asks_why_on_the_reason_field(client, oei, alice, fiona, gunnar):
    family = randomised_family(oei, researcher=alice)
    current = services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)
    client.force_login(alice)
    page = client.get(assign_url(family))
    assert "reason" in page.context["form"].fields

    response = client.post(
        assign_url(family),
        {"partner": gunnar.pk, "started_on": days_ago(0).isoformat(), "shown": current.assignment.pk, "reason": " "},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["reason"] == [
        f"{family.study_id} already has a Family Partner ({fiona}). Say why they change."
    ]
    assert Assignment.objects.get(family=family, ended_on__isnull=True).partner == fiona


# --- A family randomised in error, or withdrawn ------------------------------------------------------------------

IN_ERROR_REASON = "Randomised the sibling's referral instead of this one"


@pytest.fixture
def in_error(oei, alice):
    """An intervention family waiting for its first partner, whose randomisation is marked "randomised in error"."""
    family = randomised_family(oei, researcher=alice)
    randomisation.allocation_annotate(allocation=family.allocation, reason=IN_ERROR_REASON, annotated_by=alice)
    return family


def withdrawn(family, *, by):
    family_services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(0),
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=by,
        token=uuid.uuid4(),
    )
    return family


def test_the_waiting_list_shows_that_a_family_was_randomised_in_error(client, oei, alice, in_error):
    other = randomised_family(oei, researcher=alice)
    client.force_login(alice)

    page = client.get(reverse("visits:caseload")).content.decode()

    assert f'data-waiting="{in_error.study_id}"' in page
    row = page[page.index(f'data-waiting="{in_error.study_id}"') :].split("</tr>")[0]
    assert "data-randomised-in-error" in row and "Randomised in error" in row
    other_row = page[page.index(f'data-waiting="{other.study_id}"') :].split("</tr>")[0]
    assert "data-randomised-in-error" not in other_row


def test_the_assignment_page_shows_the_mistake_and_asks_for_a_confirmation(client, alice, fiona, in_error):
    client.force_login(alice)

    response = client.get(assign_url(in_error))

    page = response.content.decode()
    assert "data-randomised-in-error" in page
    assert escape(IN_ERROR_REASON) in page
    assert "confirm_in_error" in response.context["form"].fields


def test_a_family_randomised_in_error_is_assigned_only_once_the_researcher_confirms(client, alice, fiona, in_error):
    client.force_login(alice)
    form = {"partner": fiona.pk, "started_on": days_ago(0).isoformat(), "shown": "none"}

    refused = client.post(assign_url(in_error), form)

    assert refused.status_code == 200
    assert refused.context["form"].errors["confirm_in_error"] == [CONFIRM_IN_ERROR]
    assert not Assignment.objects.filter(family=in_error).exists()
    assert not InterventionPeriod.objects.filter(family=in_error).exists()

    confirmed = client.post(assign_url(in_error), form | {"confirm_in_error": "on"})

    assert confirmed.status_code == 302
    assert Assignment.objects.get(family=in_error).partner == fiona


def test_the_service_checks_the_confirmation_again(alice, fiona, in_error):
    with pytest.raises(ValidationError) as refused:
        services.family_assign(family=in_error, partner=fiona, started_on=days_ago(0), assigned_by=alice)

    assert refused.value.message_dict == {"confirm_in_error": [CONFIRM_IN_ERROR]}
    assert not Assignment.objects.filter(family=in_error).exists()
    result = services.family_assign(
        family=in_error, partner=fiona, started_on=days_ago(0), assigned_by=alice, confirmed_in_error=True
    )
    assert result.created
    # Asking again for the partner it has changes nothing, so it needs no confirmation.
    again = services.family_assign(family=in_error, partner=fiona, started_on=days_ago(0), assigned_by=alice)
    assert (again.created, again.assignment) == (False, result.assignment)


def test_a_family_without_the_mark_needs_no_confirmation(client, oei, alice, fiona):
    family = randomised_family(oei, researcher=alice)
    client.force_login(alice)

    response = client.get(assign_url(family))

    assert "confirm_in_error" not in response.context["form"].fields
    assert "data-randomised-in-error" not in response.content.decode()


def test_a_withdrawn_family_is_never_on_the_waiting_list_nor_in_the_banner(client, oei, alice, fiona):
    family = withdrawn(randomised_family(oei, researcher=alice), by=alice)
    client.force_login(alice)

    response = client.get(reverse("visits:caseload"))

    assert f'data-waiting="{family.study_id}"' not in response.content.decode()
    assert response.context["slot_alerts"] == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_assignment_page_of_a_withdrawn_family_says_it_gets_no_partner_and_assigns_nothing(
    client, oei, alice, fiona, method
):
    family = withdrawn(randomised_family(oei, researcher=alice), by=alice)
    client.force_login(alice)

    response = getattr(client, method)(
        assign_url(family), {"partner": fiona.pk, "started_on": days_ago(0).isoformat(), "shown": "none"}
    )

    assert response.status_code == 302
    assert response.url == reverse("families:detail", args=[family.study_id])
    assert said(response) == [f"Only a randomised family gets a Family Partner; {family.study_id} is withdrawn."]
    assert not Assignment.objects.filter(family=family).exists()
