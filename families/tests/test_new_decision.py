"""A family that declined may answer again later: consent, or decline again, with a reason. Every decision is
kept; the latest decides the family's status; a family consents at most once (docs/decisions.md)."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from families import services
from families.models import Consent, ConsentDecision, DeclineReason, Family, FamilyStatus
from families.selectors import family_timeline
from families.tests.factories import days_ago, family_in_state

REASON = "The mother called back: they talked it over and want to take part"


def declined(oei, alice) -> tuple[Family, Consent]:
    family = family_in_state("declined", site=oei, by=alice)
    return family, Consent.objects.get(family=family)


def consent_again(family, *, by, replaces, reason=REASON, decided_on=None, token=None) -> Consent:
    return services.family_record_consent(
        family=family,
        decided_on=decided_on or days_ago(2),
        form_version="v2",
        obtained_by=by,
        replaces=replaces,
        new_decision_reason=reason,
        recorded_by=by,
        token=token or uuid.uuid4(),
    )


def decline_again(family, *, by, replaces, reason=REASON, token=None) -> Consent:
    return services.family_record_decline(
        family=family,
        decided_on=days_ago(2),
        reason=DeclineReason.TOO_BURDENSOME,
        details="",
        replaces=replaces,
        new_decision_reason=reason,
        recorded_by=by,
        token=token or uuid.uuid4(),
    )


def status_of(family: Family) -> str:
    return Family.objects.get(pk=family.pk).status


def test_it_lets_a_declined_family_consent_later_and_keeps_both_decisions(alice, oei):
    family, decline = declined(oei, alice)

    later = consent_again(family, by=alice, replaces=decline, reason=f"  {REASON}  ")

    assert status_of(family) == FamilyStatus.CONSENTED
    assert list(Consent.objects.filter(family=family).order_by("pk")) == [decline, later]
    assert later.replaces == decline
    assert later.new_decision_reason == REASON
    assert Family.objects.get(pk=family.pk).consent == later


def test_it_lets_a_declined_family_decline_again(alice, oei):
    family, decline = declined(oei, alice)

    again = decline_again(family, by=alice, replaces=decline)

    assert status_of(family) == FamilyStatus.DECLINED
    assert Consent.objects.filter(family=family).count() == 2
    assert Family.objects.get(pk=family.pk).consent == again
    # and then consent, replacing the latest decline
    consent_again(family, by=alice, replaces=again)
    assert status_of(family) == FamilyStatus.CONSENTED


@pytest.mark.parametrize("reason", ["", "  \n "])
def test_it_refuses_a_new_decision_without_a_reason(alice, oei, reason):
    family, decline = declined(oei, alice)

    with pytest.raises(ValidationError) as refused:
        consent_again(family, by=alice, replaces=decline, reason=reason)

    assert set(refused.value.error_dict) == {"new_decision_reason"}
    assert Consent.objects.filter(family=family).count() == 1
    assert status_of(family) == FamilyStatus.DECLINED


def test_it_refuses_a_new_decision_dated_before_the_previous_one(alice, oei):
    family, decline = declined(oei, alice)

    with pytest.raises(ValidationError) as refused:
        consent_again(family, by=alice, replaces=decline, decided_on=decline.decided_on - timedelta(days=1))

    assert set(refused.value.error_dict) == {"decided_on"}
    assert "before the previous decision" in str(refused.value)
    assert consent_again(family, by=alice, replaces=decline, decided_on=decline.decided_on).replaces == decline


def test_it_refuses_a_new_decision_made_on_a_page_older_than_the_latest_decision(alice, oei):
    family, decline = declined(oei, alice)
    again = decline_again(family, by=alice, replaces=decline)

    # A colleague's form, opened before the second decline, still names the first.
    with pytest.raises(ValidationError, match="recorded meanwhile"):
        consent_again(family, by=alice, replaces=decline)
    # A form opened while the family was still waiting for its answer names none.
    with pytest.raises(ValidationError, match="recorded meanwhile"):
        consent_again(family, by=alice, replaces=None)

    assert Consent.objects.filter(family=family).count() == 2
    assert Family.objects.get(pk=family.pk).consent == again


@pytest.mark.parametrize("state", ["consented", "withdrawn"])
def test_it_refuses_a_new_decision_once_the_family_has_consented(alice, oei, state):
    family = family_in_state(state, site=oei, by=alice)
    consent = Consent.objects.get(family=family)

    with pytest.raises(ValidationError, match="has already consented"):
        decline_again(family, by=alice, replaces=consent)

    assert Consent.objects.filter(family=family).count() == 1
    assert status_of(family) == state


def test_it_records_a_resubmitted_new_decision_once(alice, oei):
    family, decline = declined(oei, alice)
    token = uuid.uuid4()

    first = consent_again(family, by=alice, replaces=decline, token=token)
    again = consent_again(family, by=alice, replaces=decline, token=token)

    assert again.pk == first.pk
    assert Consent.objects.filter(family=family).count() == 2


def test_it_dates_a_withdrawal_against_the_consent_not_the_earlier_decline(alice, oei):
    family, decline = declined(oei, alice)
    consented = consent_again(family, by=alice, replaces=decline, decided_on=days_ago(3))

    with pytest.raises(ValidationError, match="before the consent"):
        services.family_withdraw(
            family=family,
            withdrawn_on=days_ago(4),
            reason="moved_away",
            data_may_be_kept=True,
            recorded_by=alice,
            token=uuid.uuid4(),
        )
    assert consented.decided_on == days_ago(3)


def test_it_shows_both_decisions_and_the_reason_in_the_timeline(alice, oei):
    family, decline = declined(oei, alice)
    consent_again(family, by=alice, replaces=decline)

    events = family_timeline(Family.objects.select_related("site").get(pk=family.pk), viewer=alice)

    added = [
        {change.label: change.new for change in event.changes} for event in events if event.what == "Consent added"
    ]
    assert [decision["decision"] for decision in added] == ["Consented", "Declined"]
    assert added[0]["reason for the new decision"] == REASON


# --- The database keeps the rules --------------------------------------------------------------------------


def raw_decision(family, alice, **fields) -> Consent:
    values = {
        "decision": ConsentDecision.DECLINED,
        "decline_reason": DeclineReason.PRIVACY,
        "decided_on": days_ago(1),
        "recorded_by": alice,
        "submission_token": uuid.uuid4(),
        **fields,
    }
    if values["decision"] == ConsentDecision.CONSENTED:
        values |= {"decline_reason": "", "form_version": "v1", "obtained_by": alice}
    return Consent.objects.create(family=family, **values)


def test_it_refuses_a_second_consent_of_a_family_in_the_database(alice, oei):
    family = family_in_state("consented", site=oei, by=alice)
    first = Consent.objects.get(family=family)
    decline = raw_decision(family, alice, replaces=first, new_decision_reason="Test")

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_decision(family, alice, decision=ConsentDecision.CONSENTED, replaces=decline, new_decision_reason="x")

    assert Consent.objects.filter(family=family, decision=ConsentDecision.CONSENTED).count() == 1


def test_it_refuses_two_decisions_replacing_the_same_one_in_the_database(alice, oei):
    family, decline = declined(oei, alice)
    raw_decision(family, alice, replaces=decline, new_decision_reason="Called back")

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_decision(family, alice, replaces=decline, new_decision_reason="Called back too")

    assert Consent.objects.filter(family=family).count() == 2


def test_it_refuses_two_first_decisions_in_the_database(alice, oei):
    family, _decline = declined(oei, alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_decision(family, alice)

    assert Consent.objects.filter(family=family).count() == 1


@pytest.mark.parametrize(
    ("replaces_first", "reason"),
    [(True, ""), (False, "A reason for a first decision")],
    ids=["new decision without a reason", "first decision with a reason"],
)
def test_it_keeps_the_reason_for_new_decisions_only_in_the_database(alice, oei, replaces_first, reason):
    family, decline = declined(oei, alice)
    if not replaces_first:
        family = family_in_state("eligible", site=oei, by=alice)

    with pytest.raises(IntegrityError), transaction.atomic():
        raw_decision(family, alice, replaces=decline if replaces_first else None, new_decision_reason=reason)


# --- The page ----------------------------------------------------------------------------------------------


def test_it_offers_a_declined_family_a_new_decision_that_asks_for_a_reason(client, alice, oei):
    family, decline = declined(oei, alice)
    client.force_login(alice)

    detail = client.get(reverse("families:detail", args=[family.study_id])).content.decode()
    assert reverse("families:consent", args=[family.study_id]) in detail
    assert "Record a new decision" in detail

    page = client.get(reverse("families:consent", args=[family.study_id]))
    assert page.status_code == 200
    assert "Reason for the new decision" in page.content.decode()
    assert page.context["form"].initial["replaces"] == decline.pk


def test_it_records_a_new_decision_from_the_page_and_shows_both(client, alice, oei):
    family, decline = declined(oei, alice)
    client.force_login(alice)
    form = client.get(reverse("families:consent", args=[family.study_id])).context["form"]
    data = {
        "token": form.initial["token"],
        "replaces": decline.pk,
        "decision": "consented",
        "decided_on": days_ago(1).isoformat(),
        "form_version": "v3",
        "obtained_by": alice.pk,
    }

    refused = client.post(reverse("families:consent", args=[family.study_id]), data)
    assert refused.status_code == 200
    assert "new_decision_reason" in refused.context["form"].errors
    assert status_of(family) == FamilyStatus.DECLINED

    response = client.post(
        reverse("families:consent", args=[family.study_id]), data | {"new_decision_reason": REASON}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("families:detail", args=[family.study_id])
    assert status_of(family) == FamilyStatus.CONSENTED
    page = response.content.decode()
    consent_card = page[page.index('id="consent-heading"') : page.index('id="timeline-heading"')]
    assert consent_card.count("data-decision=") == 2
    assert REASON in consent_card
    assert consent_card.index("v3") < consent_card.index("Not interested"), "the latest decision first"
