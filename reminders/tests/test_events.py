"""Messages on events, in the event's own transaction: a new family for a Family Partner, a randomisation receipt."""

from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError

from families.tests.factories import family_in_state
from notifications.models import Message, MessageStatus
from notifications.services import message_deliver, message_link, message_text
from randomization import services as randomisation
from randomization.models import Allocation, Arm
from reminders import services
from reminders.tests.factories import complete_baseline, person, randomised
from trial.roles import Role
from visits import services as visit_services
from visits.tests.factories import _list_for, partner


def test_a_partner_is_told_of_a_new_family(oei, alice):
    fiona = partner(oei, "fiona", email="fiona@example.org")
    family = randomised(oei, researcher=alice)
    visit_services.family_assign(family=family, partner=fiona, started_on=date.today(), assigned_by=alice)
    message = Message.objects.get(kind=services.NEW_FAMILY)
    assert message.recipient == fiona.user
    subject, body = message_text(message, "en")
    assert family.study_id not in subject and family.study_id in body
    assert message_link(message) == f"/partner/families/{family.study_id}/"
    assert message_deliver(message.pk) == MessageStatus.SENT
    assert mail.outbox[0].to == ["fiona@example.org"]


def test_a_reassignment_tells_the_new_partner_and_cancels_the_old_ones_message_if_unsent(oei, alice):
    fiona, gunnar = partner(oei, "fiona"), partner(oei, "gunnar")
    family = randomised(oei, researcher=alice)
    visit_services.family_assign(family=family, partner=fiona, started_on=date.today(), assigned_by=alice)
    visit_services.family_assign(
        family=family, partner=gunnar, started_on=date.today(), assigned_by=alice, reason="Fiona moved away"
    )
    messages = {m.recipient.username: m for m in Message.objects.filter(kind=services.NEW_FAMILY)}
    assert set(messages) == {"fiona", "gunnar"}
    assert message_deliver(messages["fiona"].pk) == MessageStatus.CANCELLED
    assert message_deliver(messages["gunnar"].pk) == MessageStatus.SENT


def test_the_randomiser_and_the_pi_get_a_receipt_with_the_arm(oei, alice, paula):
    family = randomised(oei, researcher=alice, arm=Arm.CONTROL)
    allocation = Allocation.objects.get(family=family)
    receipts = Message.objects.filter(kind=services.RANDOMISATION_RECEIPT, about=f"allocation:{allocation.pk}")
    assert {m.recipient.username for m in receipts} == {"alice", "paula"}
    for receipt in receipts:
        subject, body = message_text(receipt, "en")
        assert family.study_id in subject
        assert str(Arm.CONTROL.label) in body and allocation.randomisation_id in body
        assert receipt.context["arm"] == Arm.CONTROL
        assert message_link(receipt) == f"/families/{family.study_id}/randomisation-receipt/"


def test_a_blinded_pi_gets_a_receipt_without_the_arm_and_no_subject_carries_one(oei, alice):
    person("pia", Role.PRINCIPAL_INVESTIGATOR, Role.OUTCOME_ASSESSOR)
    family = randomised(oei, researcher=alice)
    about = f"allocation:{Allocation.objects.get(family=family).pk}"
    blinded = Message.objects.get(kind=services.RANDOMISATION_RECEIPT, about=about, recipient__username="pia")
    assert "arm" not in blinded.context and "randomisation_id" not in blinded.context
    for language in ("en", "nb"):
        subject, body = message_text(blinded, language)
        assert family.study_id in body
        for arm in Arm:
            assert str(arm.label) not in subject + body
            assert arm.value not in subject + body
        assert "-R0" not in body  # no randomisation ID (a list position)
    seen = Message.objects.get(kind=services.RANDOMISATION_RECEIPT, about=about, recipient__username="alice")
    for language in ("en", "nb"):
        subject, _body = message_text(seen, language)
        assert all(str(arm.label) not in subject for arm in Arm)


def test_a_receipt_with_the_arm_is_not_sent_to_someone_blinded_since(oei, alice):
    family = randomised(oei, researcher=alice)
    about = f"allocation:{Allocation.objects.get(family=family).pk}"
    receipt = Message.objects.get(kind=services.RANDOMISATION_RECEIPT, about=about, recipient=alice)
    # Alice takes on the outcome assessor's role before the receipt went out: she is blinded now.
    alice.groups.add(Group.objects.get_or_create(name=Role.OUTCOME_ASSESSOR)[0])
    assert message_deliver(receipt.pk) == MessageStatus.CANCELLED
    assert mail.outbox == []
    assert family.study_id not in str(mail.outbox)


def test_a_refused_randomisation_leaves_no_receipt(oei, alice, paula, monkeypatch):
    _list_for(oei)
    family = family_in_state("consented", site=oei, by=alice)
    complete_baseline(family)
    monkeypatch.setattr(randomisation, "randomisation_refusals", lambda family: ["Refused for the test."])
    with pytest.raises(ValidationError):
        randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
    assert not Message.objects.filter(kind=services.RANDOMISATION_RECEIPT).exists()
