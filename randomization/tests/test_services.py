"""The randomisation's rules as the services and the database enforce them: generating, verifying and
extending a site's sealed list, randomising, annotating, emergency unblinding and unsealing."""

import hashlib
import json

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from families.models import Family, FamilyStatus
from families.tests.factories import family_in_state
from notifications.models import Language, Message, MessageStatus, Preference
from randomization import lists, sequence, services
from randomization.kinds import LIST_USED_UP, UNBLINDING
from randomization.models import (
    Allocation,
    AllocationAnnotation,
    AllocationEntry,
    AllocationList,
    ListSegment,
    Unblinding,
    Unsealing,
)
from randomization.selectors import arm_visible_to, list_predictability, list_state, lists_with_generations
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from randomization.tests.tampering import trigger_off
from trial.models import TrialSettings
from trial.roles import Role
from trial.tests.factories import UserFactory

ARM_WORDS = (sequence.INTERVENTION, sequence.CONTROL)


@pytest.fixture(autouse=True)
def tasks_run_at_once(eager_celery):
    """The alerts are sent within the test, not queued."""


@pytest.fixture
def dina_with_email(dina):
    """The data manager, who reads her messages in English."""
    dina.email = "dina@example.org"
    dina.save()
    Preference.objects.create(user=dina, language=Language.ENGLISH)
    return dina


def verify(allocation_list, by):
    return lists.allocation_list_verify(allocation_list=allocation_list, verified_by=by)


def messages_about(words: str) -> list:
    return [message for message in mail.outbox if words in message.subject]


def consented(site, by) -> Family:
    return ready_to_randomise(site, by=by)


def randomise(family, *, by, site=None) -> services.Randomisation:
    return services.family_randomise(family=family, confirmed_site=site or family.site, randomised_by=by)


def unseal(allocation_list, *, dina, paula) -> None:
    lists.allocation_list_request_unsealing(
        allocation_list=allocation_list, reason="Recruitment has ended.", requested_by=dina
    )
    lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=paula)


# --- Generating a list ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "carol", "frank", "paula", "adam"])
def test_it_lets_only_a_data_manager_generate_a_list(request, oei, who):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        allocation_list_for(oei, by=user)
    assert not AllocationList.objects.exists()
    assert not AllocationEntry.objects.exists()


def test_it_makes_a_list_at_least_twenty_percent_longer_than_the_sites_expected_recruitment(oei, dina):
    assert oei.expected_recruitment == 15
    allocation_list = allocation_list_for(oei, by=dina)
    assert allocation_list.length >= 18
    assert allocation_list.used == 0
    assert allocation_list.is_sealed
    positions = list(allocation_list.entries.values_list("position", flat=True))
    assert positions == list(range(1, allocation_list.length + 1))
    segment = allocation_list.segments.get()
    assert (segment.number, segment.min_length, segment.first_position) == (1, 18, 1)
    assert segment.last_position == allocation_list.length
    assert segment.commitment == allocation_list.commitment
    assert segment.block_sizes == [2, 4, 6]


def test_it_refuses_a_list_shorter_than_expected_recruitment_plus_the_margin(oei, dina):
    with pytest.raises(ValidationError) as refused:
        allocation_list_for(oei, by=dina, length=17)
    assert set(refused.value.error_dict) == {"length"}
    assert "18" in refused.value.messages[0]
    assert not AllocationList.objects.exists()
    assert allocation_list_for(oei, by=dina, length=18).length >= 18


def test_it_refuses_a_second_list_for_a_site(oei, lar, dina):
    first = allocation_list_for(oei, by=dina)
    with pytest.raises(ValidationError) as refused:
        allocation_list_for(oei, by=dina)
    assert set(refused.value.error_dict) == {"site"}
    assert list(AllocationList.objects.filter(site=oei)) == [first]
    assert AllocationEntry.objects.count() == first.length
    assert allocation_list_for(lar, by=dina).site == lar


@pytest.mark.parametrize(
    ("block_sizes", "ratio"), [([3], None), ([2, 3], None), ([2, 4], (2, 1)), ([6, 8], (2, 1)), ([1], None)]
)
def test_it_refuses_block_sizes_that_cannot_hold_the_ratio(oei, dina, block_sizes, ratio):
    with pytest.raises(ValidationError) as refused:
        allocation_list_for(oei, by=dina, block_sizes=block_sizes, ratio=ratio)
    assert set(refused.value.error_dict) == {"block_sizes"}
    assert not AllocationList.objects.exists()


def test_it_generates_a_two_to_one_list_in_blocks_of_the_ratio(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina, block_sizes=[3, 6], ratio=(2, 1))
    arms = list(allocation_list.entries.values_list("sealed_arm", flat=True))
    assert allocation_list.ratio == (2, 1)
    assert arms.count(sequence.INTERVENTION) == 2 * arms.count(sequence.CONTROL)
    assert verify(allocation_list, dina).passed


def test_it_stores_the_arms_and_the_seed_encrypted(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    with connection.cursor() as cursor:
        cursor.execute("SELECT sealed_arm FROM randomization_allocationentry")
        raw_arms = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT seed FROM randomization_listsegment")
        (raw_seed,) = cursor.fetchone()
    assert len(raw_arms) == allocation_list.length
    assert not any(word in raw.lower() for raw in raw_arms for word in ARM_WORDS)
    assert len(set(raw_arms)) == len(raw_arms)  # not even equal arms look alike
    assert set(allocation_list.entries.values_list("sealed_arm", flat=True)) == set(ARM_WORDS)
    seed = allocation_list.segments.get().seed
    assert len(bytes.fromhex(seed)) == 32
    assert seed not in raw_seed
    assert "seed" not in {field.name for field in ListSegment.history.model._meta.fields}


# --- Verifying a list ----------------------------------------------------------------------------------------


def test_it_verifies_a_list_after_generation_randomisations_and_extension(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    first = verify(allocation_list, dina)
    assert first.passed and first.findings == []
    assert first.verified_by == dina
    for _ in range(3):
        randomised_family(oei, researcher=alice)
    assert verify(allocation_list, dina).passed
    lists.allocation_list_extend(
        allocation_list=allocation_list, additional=10, reason="More referrals than expected.", extended_by=dina
    )
    randomised_family(oei, researcher=alice)
    after = verify(allocation_list, None)
    assert after.passed, after.findings
    assert allocation_list.verifications.count() == 4  # the extension records one too


def test_it_lets_only_a_data_manager_record_a_verification(oei, dina, alice, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    for user in (alice, paula):
        with pytest.raises(PermissionDenied):
            verify(allocation_list, user)
    assert not allocation_list.verifications.exists()


def test_it_detects_a_changed_generation_commitment(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    with trigger_off("randomization_listsegment"):
        ListSegment.objects.filter(allocation_list=allocation_list).update(commitment="0" * 64)
    verification = verify(allocation_list, dina)
    assert not verification.passed
    kinds = {finding["kind"] for finding in verification.findings}
    assert kinds == {"segment_commitment_differs", "list_commitment_differs"}
    assert {"kind": "segment_commitment_differs", "segment": 1} in verification.findings


def test_it_detects_a_changed_list_commitment(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    AllocationList.objects.filter(pk=allocation_list.pk).update(commitment=hashlib.sha256(b"other").hexdigest())
    verification = verify(allocation_list, dina)
    assert not verification.passed
    assert verification.findings == [{"kind": "list_commitment_differs"}]


def test_it_detects_a_changed_count_of_used_entries(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    AllocationList.objects.filter(pk=allocation_list.pk).update(used=2)
    verification = verify(allocation_list, dina)
    assert verification.findings == [{"kind": "used_differs", "stored": 2, "expected": 1}]


def test_its_findings_name_positions_never_arms(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    with trigger_off("randomization_listsegment"):
        ListSegment.objects.filter(allocation_list=allocation_list).update(commitment="f" * 64)
    AllocationList.objects.filter(pk=allocation_list.pk).update(used=3)
    findings = verify(allocation_list, dina).findings
    assert len(findings) == 3
    texts = [lists.finding_text(finding) for finding in findings]
    for text in [json.dumps(findings), *texts]:
        assert not any(word in text.lower() for word in ARM_WORDS), text


# --- Extending a list ----------------------------------------------------------------------------------------


def test_it_extends_a_list_with_a_new_generation_and_a_commitment_to_the_whole_list(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    old_length, old_commitment = allocation_list.length, allocation_list.commitment
    old_arms = dict(allocation_list.entries.values_list("position", "sealed_arm"))

    lists.allocation_list_extend(
        allocation_list=allocation_list, additional=10, reason="More referrals than expected.", extended_by=dina
    )

    allocation_list.refresh_from_db()
    assert allocation_list.length >= old_length + 10
    assert allocation_list.entries.count() == allocation_list.length
    assert allocation_list.used == 1
    first, second = allocation_list.segments.order_by("number")
    assert first.commitment == old_commitment
    assert (second.number, second.first_position, second.last_position) == (2, old_length + 1, allocation_list.length)
    assert second.reason == "More referrals than expected."
    assert second.created_by == dina
    assert second.seed != first.seed
    assert allocation_list.commitment == second.commitment != old_commitment
    _stored, segments, _problems = lists._segments_of(allocation_list)
    assert allocation_list.commitment == sequence.commitment("OEI", segments, sequence.generate_list(segments))
    new_arms = dict(allocation_list.entries.values_list("position", "sealed_arm"))
    assert {position: new_arms[position] for position in old_arms} == old_arms


def test_it_extends_a_list_only_for_a_reason(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    with pytest.raises(ValidationError) as refused:
        lists.allocation_list_extend(allocation_list=allocation_list, additional=6, reason="  ", extended_by=dina)
    assert set(refused.value.error_dict) == {"reason"}
    assert allocation_list.segments.count() == 1


@pytest.mark.parametrize("who", ["alice", "paula"])
def test_it_lets_only_a_data_manager_extend_a_list(request, oei, dina, who):
    allocation_list = allocation_list_for(oei, by=dina)
    with pytest.raises(PermissionDenied):
        lists.allocation_list_extend(
            allocation_list=allocation_list,
            additional=6,
            reason="More families",
            extended_by=request.getfixturevalue(who),
        )
    allocation_list.refresh_from_db()
    assert allocation_list.segments.count() == 1
    assert allocation_list.entries.count() == allocation_list.length


def test_it_judges_an_extended_list_by_each_generations_design_weighted_by_its_length(oei, dina):
    # 18 entries in blocks of 2 (75 %), then 6 in blocks of 6 (41/60): 73.3 %, not the 70.0 % that blocks of
    # "2 or 6" would give over the whole list.
    allocation_list = allocation_list_for(oei, by=dina, block_sizes=[2])
    assert allocation_list.length == 18
    lists.allocation_list_extend(
        allocation_list=allocation_list,
        additional=6,
        reason="More families",
        extended_by=dina,
        block_sizes=[6],
        design_reason="Sixes",
    )
    allocation_list = lists_with_generations().get(pk=allocation_list.pk)
    assert allocation_list.length == 24

    share = list_predictability(allocation_list)

    assert share == pytest.approx((18 * 0.75 + 6 * 41 / 60) / 24)
    assert list_state(oei, allocation_list, TrialSettings.current()).predictability_percent == "73.3%"


def test_it_refuses_to_extend_a_list_that_fails_verification(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    AllocationList.objects.filter(pk=allocation_list.pk).update(commitment="0" * 64)
    with pytest.raises(ValidationError):
        lists.allocation_list_extend(
            allocation_list=allocation_list, additional=6, reason="More families", extended_by=dina
        )
    assert allocation_list.segments.count() == 1


# The alerts are queued when the claim commits: these tests commit.
@pytest.mark.django_db(transaction=True)
def test_it_randomises_again_after_an_exhausted_list_is_extended_and_warns_afresh(oei, dina_with_email, alice):
    oei.expected_recruitment = 1
    oei.save()
    allocation_list = allocation_list_for(oei, by=dina_with_email, block_sizes=[2])
    assert allocation_list.length == 2
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice)
    waiting = consented(oei, alice)
    with pytest.raises(ValidationError):
        randomise(waiting, by=alice)
    allocation_list.refresh_from_db()
    assert allocation_list.exhausted_alert_sent_at is not None
    assert allocation_list.low_stock_alert_sent_at is not None

    lists.allocation_list_extend(
        allocation_list=allocation_list,
        additional=2,
        reason="Two more families",
        extended_by=dina_with_email,
        block_sizes=[2],
        design_reason="Pairs for the last two families",
    )

    allocation_list.refresh_from_db()
    assert allocation_list.length == 4
    assert allocation_list.exhausted_alert_sent_at is None
    assert allocation_list.low_stock_alert_sent_at is None
    assert randomise(waiting, by=alice).allocation.position == 3
    assert len(messages_about("is running low")) == 2
    randomised_family(oei, researcher=alice)
    with pytest.raises(ValidationError):
        randomise(consented(oei, alice), by=alice)
    assert len(messages_about("is used up")) == 2


# --- Randomising a family ------------------------------------------------------------------------------------


def test_it_gives_families_the_next_entries_in_order_and_the_entrys_arm(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    first_family, second_family = consented(oei, alice), consented(oei, alice)

    first = randomise(first_family, by=alice)
    second = randomise(second_family, by=alice)

    assert first.created and second.created
    assert (first.allocation.position, second.allocation.position) == (1, 2)
    for randomisation, family in ((first, first_family), (second, second_family)):
        allocation = Allocation.objects.get(pk=randomisation.allocation.pk)
        assert allocation.family == family
        assert allocation.entry.position == allocation.position
        assert allocation.arm == allocation.entry.sealed_arm
        assert (allocation.site, allocation.randomised_by) == (oei, alice)
        assert Family.objects.get(pk=family.pk).status == FamilyStatus.RANDOMISED
    allocation_list.refresh_from_db()
    assert allocation_list.used == 2


def test_it_records_who_randomised_in_the_audit_trail_of_the_family_and_the_allocation(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    family = consented(oei, alice)
    family.referral_source = "other"  # the page's copy is stale: the audit row copies the family as stored

    allocation = randomise(family, by=alice).allocation

    family_row = Family.history.filter(id=family.pk).latest("history_id")
    assert (family_row.history_type, family_row.status, family_row.history_user) == ("~", "randomised", alice)
    assert family_row.referral_source == Family.objects.get(pk=family.pk).referral_source != "other"
    allocation_row = Allocation.history.get(id=allocation.pk)
    assert (allocation_row.history_type, allocation_row.history_user) == ("+", alice)
    assert (allocation_row.position, allocation_row.arm, allocation_row.family_id) == (1, allocation.arm, family.pk)


def test_it_returns_the_same_allocation_when_asked_again(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    family = consented(oei, alice)
    first = randomise(family, by=alice)
    again = randomise(family, by=alice)
    assert again.created is False
    assert again.allocation.pk == first.allocation.pk
    assert again.allocation.arm == first.allocation.arm
    assert Allocation.objects.count() == 1
    allocation_list.refresh_from_db()
    assert allocation_list.used == 1


@pytest.mark.parametrize("state", ["referred", "eligible", "ineligible", "declined", "withdrawn"])
def test_it_randomises_only_a_consented_family(oei, dina, alice, state):
    allocation_list = allocation_list_for(oei, by=dina)
    family = family_in_state(state, site=oei, by=alice)
    with pytest.raises(ValidationError):
        randomise(family, by=alice)
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == state
    allocation_list.refresh_from_db()
    assert allocation_list.used == 0


def test_it_refuses_a_family_whose_site_the_researcher_did_not_confirm(oei, lar, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation_list_for(lar, by=dina)
    family = consented(oei, alice)
    with pytest.raises(ValidationError) as refused:
        randomise(family, by=alice, site=lar)
    assert "not to LAR" in refused.value.messages[0]
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 0
    assert AllocationList.objects.get(site=lar).used == 0


def test_it_never_lets_a_blinded_assessor_randomise_even_one_who_is_also_a_researcher(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    both = UserFactory(username="rita", roles=[Role.RESEARCHER, Role.OUTCOME_ASSESSOR], sites=[oei])
    family = consented(oei, alice)
    with pytest.raises(PermissionDenied):
        randomise(family, by=both)
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED


@pytest.mark.parametrize("who", ["bob", "carol", "frank", "paula", "dina"])
def test_it_lets_only_a_researcher_of_the_familys_site_randomise(request, oei, lar, dina, alice, who):
    allocation_list_for(oei, by=dina)
    family = consented(oei, alice)
    with pytest.raises(PermissionDenied):
        randomise(family, by=request.getfixturevalue(who))
    assert not Allocation.objects.exists()


def test_it_tells_clearly_that_a_site_has_no_list_yet(oei, alice):
    family = consented(oei, alice)
    with pytest.raises(ValidationError) as refused:
        randomise(family, by=alice)
    assert refused.value.messages == ["OEI has no allocation list yet; ask the data manager to generate one."]
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED


# The alerts are queued when the claim commits: these tests commit.
@pytest.mark.django_db(transaction=True)
def test_it_refuses_when_the_list_is_used_up_and_tells_the_data_managers_once(oei, dina_with_email, alice):
    other_manager = UserFactory(username="dmitri", roles=[Role.DATA_MANAGER], email="dmitri@example.org")
    alice.email = "alice@example.org"
    alice.save()
    oei.expected_recruitment = 1
    oei.save()
    allocation_list_for(oei, by=dina_with_email, block_sizes=[2])
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice)
    family, another = consented(oei, alice), consented(oei, alice)

    for waiting in (family, family, another):
        with pytest.raises(ValidationError) as refused:
            randomise(waiting, by=alice)
        assert "used up" in refused.value.messages[0]
        assert Family.objects.get(pk=waiting.pk).status == FamilyStatus.CONSENTED

    assert Allocation.objects.count() == 2
    # One message to each data manager, in the outbox and by mail, each in its reader's language.
    assert sorted(Message.objects.filter(kind=LIST_USED_UP).values_list("recipient__username", flat=True)) == [
        "dina",
        "dmitri",
    ]
    (english,) = messages_about("is used up")
    (norwegian,) = messages_about("er oppbrukt")
    assert english.to == [dina_with_email.email]
    assert norwegian.to == [other_manager.email]
    for message in (english, norwegian):
        assert "OEI" in message.subject and "OEI" in message.body
        assert not any(word in (message.subject + message.body).lower() for word in ARM_WORDS)


# The alerts are queued when the claim commits: these tests commit.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("expected_recruitment", "length", "first_warned_position"),
    [(10, 12, 8), (25, 30, 24)],
    ids=["4 entries left", "20 percent left"],
)
def test_it_warns_the_data_managers_once_when_the_list_runs_low(
    oei, dina_with_email, alice, expected_recruitment, length, first_warned_position
):
    oei.expected_recruitment = expected_recruitment
    oei.save()
    allocation_list = allocation_list_for(oei, by=dina_with_email, block_sizes=[2], length=length)
    assert allocation_list.length == length
    for _ in range(first_warned_position - 1):
        randomised_family(oei, researcher=alice)
    assert messages_about("is running low") == []

    randomised_family(oei, researcher=alice)
    (message,) = messages_about("is running low")
    assert message.to == [dina_with_email.email]
    assert f"{length - first_warned_position} of {length} entries left" in message.body

    randomised_family(oei, researcher=alice)
    assert len(messages_about("is running low")) == 1


def test_it_refuses_to_randomise_from_an_unsealed_list(oei, dina, paula, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    unseal(allocation_list, dina=dina, paula=paula)
    family = consented(oei, alice)
    with pytest.raises(ValidationError) as refused:
        randomise(family, by=alice)
    assert "unsealed" in refused.value.messages[0]
    assert not Allocation.objects.exists()
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED


# --- Annotating a mistaken randomisation --------------------------------------------------------------------


def test_it_annotates_a_randomisation_once_and_keeps_the_family_in_its_arm(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    annotation = services.allocation_annotate(
        allocation=allocation, reason="  Consent was withdrawn the day before.  ", annotated_by=alice
    )
    assert annotation.reason == "Consent was withdrawn the day before."
    assert annotation.annotated_by == alice
    with pytest.raises(ValidationError):
        services.allocation_annotate(allocation=allocation, reason="Again", annotated_by=alice)
    assert AllocationAnnotation.objects.count() == 1
    kept = Allocation.objects.get(pk=allocation.pk)
    assert (kept.arm, kept.position) == (allocation.arm, allocation.position)
    assert Family.objects.get(pk=allocation.family_id).status == FamilyStatus.RANDOMISED


def test_it_annotates_only_for_a_reason(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    with pytest.raises(ValidationError) as refused:
        services.allocation_annotate(allocation=allocation, reason=" ", annotated_by=alice)
    assert set(refused.value.error_dict) == {"reason"}
    assert not AllocationAnnotation.objects.exists()


@pytest.mark.parametrize("who", ["bob", "carol", "frank", "paula", "dina"])
def test_it_lets_only_a_researcher_of_the_site_annotate(request, oei, lar, dina, alice, who):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    with pytest.raises(PermissionDenied):
        services.allocation_annotate(allocation=allocation, reason="Mistake", annotated_by=request.getfixturevalue(who))
    assert not AllocationAnnotation.objects.exists()


# --- Who sees the arm, and emergency unblinding --------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees"),
    [("alice", True), ("paula", True), ("carol", False), ("frank", False), ("dina", False), ("bob", False)],
)
def test_it_shows_the_arm_only_to_the_sites_researchers_and_the_pi(request, oei, lar, dina, alice, who, sees):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    assert arm_visible_to(request.getfixturevalue(who), allocation.family) is sees


def test_it_reveals_the_arm_to_one_blinded_assessor_in_an_emergency_and_tells_the_data_managers(
    oei, dina_with_email, alice, carol, paula, django_capture_on_commit_callbacks
):
    allocation_list_for(oei, by=dina_with_email)
    allocation = randomised_family(oei, researcher=alice)
    family = allocation.family
    assert arm_visible_to(carol, family) is False

    with django_capture_on_commit_callbacks(execute=True):
        unblinding = services.family_unblind(
            family=family, user=carol, reason="Serious adverse event", unblinded_by=paula
        )

    assert (unblinding.user, unblinding.unblinded_by, unblinding.reason) == (carol, paula, "Serious adverse event")
    assert arm_visible_to(carol, family) is True
    (row,) = Message.objects.filter(kind=UNBLINDING)
    assert (row.recipient, row.status) == (dina_with_email, MessageStatus.SENT)
    assert row.context["study_id"] == family.study_id
    (message,) = messages_about("Emergency unblinding")
    assert message.to == [dina_with_email.email]
    assert family.study_id in message.subject
    assert "carol" in message.body and "paula" in message.body
    assert not any(word in message.body.lower() for word in ARM_WORDS)


def test_it_unblinds_a_user_for_a_family_only_once(oei, dina, alice, carol, paula):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    services.family_unblind(family=family, user=carol, reason="Emergency", unblinded_by=paula)
    with pytest.raises(ValidationError) as refused:
        services.family_unblind(family=family, user=carol, reason="Emergency again", unblinded_by=paula)
    assert set(refused.value.error_dict) == {"user"}
    assert Unblinding.objects.count() == 1


@pytest.mark.parametrize("who", ["alice", "dina", "carol", "adam"])
def test_it_lets_only_the_pi_unblind(request, oei, dina, alice, carol, who):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    with pytest.raises(PermissionDenied):
        services.family_unblind(
            family=family, user=carol, reason="Emergency", unblinded_by=request.getfixturevalue(who)
        )
    assert not Unblinding.objects.exists()
    assert arm_visible_to(carol, family) is False


def test_it_unblinds_only_for_a_reason(oei, dina, alice, carol, paula):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    with pytest.raises(ValidationError) as refused:
        services.family_unblind(family=family, user=carol, reason="   ", unblinded_by=paula)
    assert set(refused.value.error_dict) == {"reason"}
    assert not Unblinding.objects.exists()


def test_it_unblinds_only_a_blinded_assessor_of_the_familys_site(oei, lar, dina, alice, paula):
    allocation_list_for(oei, by=dina)
    family = randomised_family(oei, researcher=alice).family
    larvik_assessor = UserFactory(username="lars", roles=[Role.OUTCOME_ASSESSOR], sites=[lar])
    for user in (larvik_assessor, alice):
        with pytest.raises(ValidationError) as refused:
            services.family_unblind(family=family, user=user, reason="Emergency", unblinded_by=paula)
        assert set(refused.value.error_dict) == {"user"}
    assert not Unblinding.objects.exists()
    assert arm_visible_to(larvik_assessor, family) is False


def test_it_unblinds_only_a_randomised_family(oei, dina, alice, carol, paula):
    allocation_list_for(oei, by=dina)
    family = consented(oei, alice)
    with pytest.raises(ValidationError):
        services.family_unblind(family=family, user=carol, reason="Emergency", unblinded_by=paula)
    assert not Unblinding.objects.exists()


# --- Unsealing a list ----------------------------------------------------------------------------------------


def test_it_unseals_a_list_when_a_data_manager_asks_and_the_pi_agrees(oei, dina, paula, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    with pytest.raises(PermissionDenied):
        lists.unsealed_entries(allocation_list, viewed_by=dina)
    with pytest.raises(PermissionDenied):
        lists.unsealed_canonical_text(allocation_list, downloaded_by=dina)

    unsealing = lists.allocation_list_request_unsealing(
        allocation_list=allocation_list, reason="Recruitment has ended.", requested_by=dina
    )
    allocation_list.refresh_from_db()
    assert allocation_list.is_sealed
    assert unsealing.requested_as == "data_manager"
    lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=paula)

    allocation_list.refresh_from_db()
    unsealing.refresh_from_db()
    assert allocation_list.unsealed_at is not None
    assert allocation_list.unsealed_at == unsealing.approved_at
    assert unsealing.approved_by == paula
    entries = lists.unsealed_entries(allocation_list, viewed_by=dina)
    assert [entry.position for entry in entries] == list(range(1, allocation_list.length + 1))
    assert (entries[0].study_id, entries[0].arm) == (allocation.family.study_id, allocation.arm)
    assert {entry.study_id for entry in entries[1:]} == {None}
    assert [entry.arm for entry in entries] == list(allocation_list.entries.values_list("sealed_arm", flat=True))
    text = lists.unsealed_canonical_text(allocation_list, downloaded_by=dina)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == allocation_list.commitment


def test_it_unseals_a_list_when_the_pi_asks_and_a_data_manager_agrees(oei, dina, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="End", requested_by=paula)
    lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=dina)
    allocation_list.refresh_from_db()
    assert not allocation_list.is_sealed


def test_it_needs_a_second_person_of_the_other_role_to_unseal(oei, dina, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    second_manager = UserFactory(username="dmitri", roles=[Role.DATA_MANAGER])
    lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="End", requested_by=dina)
    with pytest.raises(ValidationError) as refused:
        lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=dina)
    assert "another person" in refused.value.messages[0]
    with pytest.raises(PermissionDenied):
        lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=second_manager)
    allocation_list.refresh_from_db()
    assert allocation_list.is_sealed
    assert Unsealing.objects.get().approved_by is None
    with pytest.raises(PermissionDenied):
        lists.unsealed_entries(allocation_list, viewed_by=dina)


def test_an_account_holding_both_roles_cannot_ask_to_unseal_and_then_agree(client, oei, dina):
    both = UserFactory(username="dora", roles=[Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR])
    allocation_list = allocation_list_for(oei, by=dina)
    lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="End", requested_by=both)
    client.force_login(both)

    response = client.post(reverse("randomization:unseal_approve", args=["OEI"]), follow=True)

    assert response.status_code == 200
    assert "another person, holding the other role, must agree" in response.content.decode()
    assert AllocationList.objects.get(pk=allocation_list.pk).is_sealed
    assert Unsealing.objects.get().approved_by is None


def test_the_database_refuses_the_asker_as_the_second_person_when_the_service_forgets_to(monkeypatch, oei, dina):
    both = UserFactory(username="dora", roles=[Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR])
    allocation_list = allocation_list_for(oei, by=dina)
    lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="End", requested_by=both)
    monkeypatch.setattr(lists, "unsealing_refusal", lambda user, unsealing: None)

    with pytest.raises(ValidationError) as refused:
        lists.allocation_list_approve_unsealing(allocation_list=allocation_list, approved_by=both)

    assert "another person, holding the other role, must agree" in refused.value.messages[0]
    assert AllocationList.objects.get(pk=allocation_list.pk).is_sealed
    assert Unsealing.objects.get().approved_by is None


def test_it_lets_only_a_data_manager_or_the_pi_ask_to_unseal_and_only_for_a_reason(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    with pytest.raises(PermissionDenied):
        lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason="End", requested_by=alice)
    with pytest.raises(ValidationError):
        lists.allocation_list_request_unsealing(allocation_list=allocation_list, reason=" ", requested_by=dina)
    assert not Unsealing.objects.exists()


# --- What the database itself refuses ------------------------------------------------------------------------


def test_the_database_refuses_a_second_allocation_for_a_family(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    entry = allocation_list.entries.get(position=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            family=allocation.family, entry=entry, arm=entry.sealed_arm, site=oei, position=2, randomised_by=alice
        )
    assert Allocation.objects.count() == 1


def test_the_database_refuses_to_give_an_entry_twice(oei, dina, alice):
    allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    other = consented(oei, alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            family=other, entry=allocation.entry, arm=allocation.arm, site=oei, position=2, randomised_by=alice
        )
    assert Allocation.objects.count() == 1


def test_the_database_refuses_to_change_an_entry_or_an_allocation(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    unused = allocation_list.entries.get(position=2)
    flipped = {sequence.INTERVENTION: sequence.CONTROL, sequence.CONTROL: sequence.INTERVENTION}
    with pytest.raises(IntegrityError), transaction.atomic():
        AllocationEntry.objects.filter(pk=unused.pk).update(sealed_arm=flipped[unused.sealed_arm])
    with pytest.raises(IntegrityError), transaction.atomic():
        AllocationEntry.objects.filter(pk=unused.pk).update(position=999)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk).update(arm=flipped[allocation.arm])
    assert allocation_list.entries.get(position=2).sealed_arm == unused.sealed_arm
    assert Allocation.objects.get(pk=allocation.pk).arm == allocation.arm


def test_the_database_refuses_to_delete_an_entry_or_an_allocation(postgres, oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    allocation = randomised_family(oei, researcher=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        AllocationEntry.objects.filter(allocation_list=allocation_list, position=allocation_list.length).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk).delete()
    assert allocation_list.entries.count() == allocation_list.length
    assert Allocation.objects.filter(pk=allocation.pk).exists()


def test_a_list_running_low_claims_its_own_alert_and_no_other_sites(oei, lar, dina, alice):
    oei.expected_recruitment = 1
    oei.save()
    oei_list = allocation_list_for(oei, by=dina, block_sizes=[2], design_reason="Two entries")
    lar_list = allocation_list_for(lar, by=dina)

    randomised_family(oei, researcher=alice)

    oei_list.refresh_from_db()
    lar_list.refresh_from_db()
    assert oei_list.low_stock_alert_sent_at is not None
    assert lar_list.low_stock_alert_sent_at is None, "Larvik's list is full: its alert must still be unclaimed"


FINDINGS = [
    ({"kind": "entry_missing", "position": 7}, ["7"]),
    ({"kind": "entry_differs", "position": 8}, ["8"]),
    ({"kind": "entry_extra", "position": 9}, ["9"]),
    ({"kind": "length_differs", "stored": 24, "expected": 18}, ["24", "18"]),
    ({"kind": "segment_commitment_differs", "segment": 2}, ["2"]),
    ({"kind": "list_commitment_differs"}, []),
    ({"kind": "allocation_differs", "position": 11}, ["11"]),
    ({"kind": "generation_missing", "segment": 3}, ["3"]),
    ({"kind": "generation_unusable", "segment": 4}, ["4"]),
    ({"kind": "used_differs", "stored": 5, "expected": 4}, ["5", "4"]),
]


@pytest.mark.parametrize("language", ["en", "nb"])
def test_it_says_each_finding_in_its_own_words_with_its_numbers(language):
    from django.utils import translation

    with translation.override(language):
        texts = [lists.finding_text(finding) for finding, _numbers in FINDINGS]
        unknown = lists.finding_text({"kind": "something new"})

    assert len(set(texts)) == len(FINDINGS), "every kind of finding has a sentence of its own"
    assert unknown not in texts
    for text, (_finding, numbers) in zip(texts, FINDINGS, strict=True):
        assert all(number in text for number in numbers), text
        assert "%(" not in text, text
    if language == "nb":
        with translation.override("en"):
            english = [lists.finding_text(finding) for finding, _numbers in FINDINGS]
        assert not set(texts) & set(english), "every finding is said in Norwegian to a Norwegian reader"
