"""What a blinded outcome assessor reads on a family's page (docs/trial-rules.md, "What reveals the arm"):
no free text written after the family's randomisation, no time of day from the randomisation's day on, and
not who randomised. Coded reasons, and everything written before the randomisation, stay as they are.

The family is randomised here through families' own step (`family_claim_for_randomisation`), as the
randomisation service does, so that these tests need no allocation list.
"""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from families import services
from families.models import (
    Child,
    Consent,
    Family,
    FamilyIdentity,
    FamilyStatus,
    Parent,
    Screening,
    Withdrawal,
    WithdrawalReason,
)
from families.selectors import family_timeline
from families.tests.factories import days_ago, family_in_state
from randomization.tests.factories import ready_to_randomise
from trial.audit import save_as
from trial.roles import Role
from trial.tests.factories import UserFactory

DETAILS = "Did not want the Family Partner visits any more"
CORRECTION_REASON = "The mother called: the intervention arm was too much for them"
RESCREENING_REASON = "New report from the school"


@pytest.fixture
def randolf(oei):
    """The researcher who randomises (and does nothing else, so that his name is only the randomiser's)."""
    return UserFactory(
        username="randolf", first_name="Randolf", last_name="Trekkersen", roles=[Role.RESEARCHER], sites=[oei]
    )


def move_history_back(family: Family, days: int) -> None:
    """Dates every audited change made so far to the family and its records `days` earlier, as if the
    family had been registered, screened and asked for consent on an earlier day."""
    for model, key in [(Family, "id")] + [
        (model, "family_id") for model in (Parent, Child, FamilyIdentity, Screening, Consent)
    ]:
        history = model.history  # type: ignore[attr-defined]
        for row in history.filter(**{key: family.pk}):
            history.filter(pk=row.pk).update(history_date=row.history_date - timedelta(days=days))


@pytest.fixture
def withdrawn(oei, alice, randolf) -> Family:
    """Registered, screened and consented days ago; randomised today by randolf; then
    withdrawn by alice with details, which she corrected later with a reason."""
    family = ready_to_randomise(oei, by=alice)
    move_history_back(family, days=3)
    assert services.family_claim_for_randomisation(family=family, site=oei, randomised_by=randolf) is not None
    withdrawal = services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(0),
        reason=WithdrawalReason.FAMILY_REQUEST,
        details=DETAILS,
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    withdrawal.details = DETAILS + " (confirmed by phone)"
    save_as(withdrawal, alice, CORRECTION_REASON)
    return Family.objects.select_related("site").get(pk=family.pk)


def randomisation_event(events):
    return next(
        event
        for event in events
        if any(
            change.label == "status" and change.new == str(FamilyStatus.RANDOMISED.label) for change in event.changes
        )
    )


def shown_text(events) -> str:
    return repr(events)


def test_it_hides_the_withdrawal_details_and_the_correction_reason_from_a_blinded_assessor(withdrawn, carol):
    events = family_timeline(withdrawn, viewer=carol)

    assert DETAILS not in shown_text(events)
    assert CORRECTION_REASON not in shown_text(events)
    added = next(event for event in events if event.what == "Withdrawal added")
    changes = {change.label: change.new for change in added.changes}
    assert changes["reason"] == str(WithdrawalReason.FAMILY_REQUEST.label), "the coded reason stays visible"
    assert changes["details"] == "(hidden)"
    corrected = next(event for event in events if event.what == "Withdrawal changed")
    assert corrected.reason == "(hidden)"
    assert [(change.old, change.new) for change in corrected.changes] == [("(hidden)", "(hidden)")]


def test_it_shows_the_withdrawal_details_and_the_correction_reason_to_the_researcher(withdrawn, alice):
    events = family_timeline(withdrawn, viewer=alice)

    added = next(event for event in events if event.what == "Withdrawal added")
    assert {change.label: change.new for change in added.changes}["details"] == DETAILS
    corrected = next(event for event in events if event.what == "Withdrawal changed")
    assert corrected.reason == CORRECTION_REASON
    assert randomisation_event(events).who == "Randolf Trekkersen"
    assert not any(event.date_only for event in events)


def test_it_gives_a_blinded_assessor_dates_only_from_the_randomisation_day_on_and_not_who_randomised(withdrawn, carol):
    events = family_timeline(withdrawn, viewer=carol)

    randomised = randomisation_event(events)
    assert randomised.who == "—"
    assert "Trekkersen" not in shown_text(events)
    today = timezone.localdate()
    assert {timezone.localtime(event.when).date() == today for event in events} == {True, False}
    for event in events:
        assert event.date_only == (timezone.localtime(event.when).date() >= today), event.what


def test_it_keeps_what_was_written_before_the_randomisation_for_a_blinded_assessor(oei, alice, carol, randolf):
    family = family_in_state("eligible", site=oei, by=alice)
    services.family_screen(
        family=family,
        screened_on=days_ago(5),
        involved_with_child_welfare=True,
        harmful_circumstances=True,
        struggle_areas=["finances", "housing"],
        rescreening_reason=RESCREENING_REASON,
        screened_by=alice,
        token=uuid.uuid4(),
    )
    services.family_record_consent(
        family=family,
        decided_on=days_ago(1),
        form_version="v1",
        obtained_by=alice,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    move_history_back(family, days=2)
    services.family_claim_for_randomisation(family=family, site=oei, randomised_by=randolf)

    events = family_timeline(Family.objects.select_related("site").get(pk=family.pk), viewer=carol)

    rescreening = next(
        event for event in events if any(change.label == "reason for screening again" for change in event.changes)
    )
    assert {change.label: change.new for change in rescreening.changes}["reason for screening again"] == (
        RESCREENING_REASON
    )
    assert not rescreening.date_only


def test_it_shows_a_blinded_assessor_the_coded_withdrawal_reason_but_not_its_details_on_the_family_page(
    client, withdrawn, carol
):
    client.force_login(carol)
    for language in ("en", "nb"):
        response = client.get(reverse("families:detail", args=[withdrawn.study_id]), HTTP_ACCEPT_LANGUAGE=language)
        page = response.content.decode()

        assert response.status_code == 200
        assert 'data-status="withdrawn"' in page
        with translation.override(language):
            assert str(WithdrawalReason.FAMILY_REQUEST.label) in page
            today = date_format(timezone.localdate(), "SHORT_DATE_FORMAT")
        assert "Family Partner visits" not in page, language
        assert "intervention arm" not in page, language
        assert "Trekkersen" not in page, language
        assert today in page, language
        assert not re.search(rf"{re.escape(today)} \d{{2}}:\d{{2}}", page), (
            f"a time on the randomisation's day ({language})"
        )


def test_it_shows_the_researcher_the_withdrawal_details_on_the_family_page(client, withdrawn, alice):
    client.force_login(alice)
    page = client.get(reverse("families:detail", args=[withdrawn.study_id])).content.decode()

    assert "Did not want the Family Partner visits any more (confirmed by phone)" in page
    assert f"Reason: {CORRECTION_REASON}" in page
    assert "Randolf Trekkersen" in page
    randomised_at = Family.history.filter(id=withdrawn.pk, status="randomised").get().history_date
    assert date_format(timezone.localtime(randomised_at), "SHORT_DATETIME_FORMAT") in page


def test_it_shows_the_details_of_a_withdrawal_before_randomisation_to_a_blinded_assessor(client, oei, alice, carol):
    family = ready_to_randomise(oei, by=alice)
    services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(0),
        reason=WithdrawalReason.OTHER,
        details="Moving to Bergen next month",
        data_may_be_kept=False,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    client.force_login(carol)
    page = client.get(reverse("families:detail", args=[family.study_id])).content.decode()

    # Never randomised, so nothing written about the family can tell an arm.
    assert "Moving to Bergen next month" in page
    assert Withdrawal.objects.get(family=family).details in page
