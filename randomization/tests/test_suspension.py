"""A list that fails verification stops allocating at once (docs/allocation-lists.md, "Verification"): from the
page, the command, the daily job or before an extension. The data managers are told once per stop, and the list
allocates again only when a data manager and the principal investigator have recorded what was found: one writes
the finding and the decision, a person of the other role agrees. Findings so reviewed do not stop it again; new
ones do."""

from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from families.models import Family, FamilyStatus
from notifications.models import Language, Preference
from randomization import lists, sequence, services, tasks
from randomization.models import Allocation, AllocationEntry, AllocationList, ListSuspension
from randomization.tests.factories import allocation_list_for, randomised_family, ready_to_randomise
from randomization.tests.tampering import trigger_off
from trial.roles import Role
from trial.tests.factories import UserFactory

FLIPPED = {sequence.INTERVENTION: sequence.CONTROL, sequence.CONTROL: sequence.INTERVENTION}


@pytest.fixture(autouse=True)
def alerts_sent_at_once(eager_celery):
    pass


@pytest.fixture
def managers_with_email(dina):
    """The data manager, who reads her messages in English."""
    dina.email = "dina@example.org"
    dina.save()
    Preference.objects.create(user=dina, language=Language.ENGLISH)
    return [dina.email]


def flip_entry(allocation_list: AllocationList, position: int) -> None:
    """Change the arm stored at `position`, as someone with the database's rights could."""
    entry = AllocationEntry.objects.get(allocation_list=allocation_list, position=position)
    with trigger_off("randomization_allocationentry"):
        AllocationEntry.objects.filter(pk=entry.pk).update(sealed_arm=FLIPPED[entry.sealed_arm])


def verify(allocation_list, by):
    return lists.allocation_list_verify(allocation_list=allocation_list, verified_by=by)


def stopped_message_about(site_code: str) -> list:
    return [message for message in mail.outbox if "stopped" in message.subject and site_code in message.subject]


def review(allocation_list, by, finding="Position 9 was changed by a faulty restore script.", decision="Resume."):
    return lists.allocation_list_review_suspension(
        allocation_list=allocation_list, finding=finding, decision=decision, reviewed_by=by
    )


def agree(allocation_list, by):
    return lists.allocation_list_approve_review(allocation_list=allocation_list, approved_by=by)


def randomise(family, by):
    return services.family_randomise(family=family, confirmed_site=family.site, randomised_by=by)


def test_a_failed_verification_stops_the_list_at_once_and_tells_the_researcher_why(
    oei, dina, alice, managers_with_email, django_capture_on_commit_callbacks
):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    flip_entry(allocation_list, 9)

    with django_capture_on_commit_callbacks(execute=True):
        verification = verify(allocation_list, dina)

    assert not verification.passed
    suspension = ListSuspension.objects.get()
    assert (suspension.allocation_list, suspension.verification) == (allocation_list, verification)
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is not None
    family = ready_to_randomise(oei, by=alice)
    with pytest.raises(ValidationError) as refused:
        randomise(family, alice)
    assert "failed verification" in refused.value.messages[0]
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED
    assert Allocation.objects.count() == 1
    assert AllocationList.objects.get(pk=allocation_list.pk).used == 1
    (message,) = stopped_message_about("OEI")
    assert message.to == managers_with_email
    assert not any(arm in message.body.lower() for arm in FLIPPED)


def test_it_tells_the_data_managers_once_per_stop(
    oei, dina, alice, managers_with_email, django_capture_on_commit_callbacks
):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 3)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            verify(allocation_list, dina)
        for _ in range(2):
            with pytest.raises(ValidationError):
                randomise(ready_to_randomise(oei, by=alice), alice)

    assert len(stopped_message_about("OEI")) == 1
    assert ListSuspension.objects.count() == 1
    assert allocation_list.verifications.filter(passed=False).count() == 3


def test_the_command_and_the_daily_job_stop_a_list_that_fails(oei, lar, dina):
    failing = allocation_list_for(oei, by=dina)
    passing = allocation_list_for(lar, by=dina)
    flip_entry(failing, 5)

    with pytest.raises(CommandError):
        call_command("verify_allocation_list", stdout=StringIO())
    assert ListSuspension.objects.filter(allocation_list=failing).count() == 1

    tasks.verify_allocation_lists.delay()

    assert failing.verifications.count() == 2 and passing.verifications.count() == 2
    assert ListSuspension.objects.filter(allocation_list=failing).count() == 1
    assert not ListSuspension.objects.filter(allocation_list=passing).exists()
    assert AllocationList.objects.get(pk=passing.pk).suspended_at is None


def test_it_runs_the_daily_verification_from_the_beat_schedule():
    entries = [entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values() if entry["task"].endswith("lists")]
    assert [entry["task"] for entry in entries] == ["randomization.tasks.verify_allocation_lists"]
    assert entries[0]["schedule"] == 24 * 60 * 60


def test_it_records_the_verification_before_an_extension_and_stops_a_list_that_fails(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 2)

    with pytest.raises(ValidationError):
        lists.allocation_list_extend(allocation_list=allocation_list, additional=6, reason="More", extended_by=dina)

    verification = allocation_list.verifications.get()
    assert not verification.passed and verification.verified_by == dina
    assert {"kind": "entry_differs", "position": 2} in verification.findings
    assert ListSuspension.objects.filter(allocation_list=allocation_list).exists()
    assert allocation_list.segments.count() == 1


def test_it_records_the_passing_verification_before_an_extension(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)

    lists.allocation_list_extend(allocation_list=allocation_list, additional=6, reason="More", extended_by=dina)

    assert allocation_list.verifications.get().passed
    assert allocation_list.segments.count() == 2


def test_it_refuses_to_extend_a_stopped_list(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 2)
    verify(allocation_list, dina)

    with pytest.raises(ValidationError) as refused:
        lists.allocation_list_extend(allocation_list=allocation_list, additional=6, reason="More", extended_by=dina)

    assert "stopped" in refused.value.messages[0]
    assert allocation_list.segments.count() == 1


@pytest.mark.parametrize(("writer", "approver"), [("dina", "paula"), ("paula", "dina")])
def test_a_data_manager_and_the_pi_resume_the_list_after_recording_what_was_found(
    request, oei, dina, paula, alice, writer, approver
):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    writer, approver = request.getfixturevalue(writer), request.getfixturevalue(approver)

    review(allocation_list, writer)
    with pytest.raises(ValidationError):
        randomise(ready_to_randomise(oei, by=alice), alice)  # still stopped until agreed
    agree(allocation_list, approver)

    suspension = ListSuspension.objects.get()
    assert (suspension.reviewed_by, suspension.approved_by) == (writer, approver)
    assert suspension.finding.startswith("Position 9")
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is None
    assert randomise(ready_to_randomise(oei, by=alice), alice).allocation.position == 1


def test_reviewed_findings_do_not_stop_the_list_again_but_new_ones_do(oei, dina, paula, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    review(allocation_list, dina)
    agree(allocation_list, paula)

    again = verify(allocation_list, dina)
    assert not again.passed
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is None
    randomise(ready_to_randomise(oei, by=alice), alice)

    flip_entry(allocation_list, 10)
    verify(allocation_list, dina)
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is not None
    assert ListSuspension.objects.count() == 2


@pytest.mark.parametrize("who", ["alice", "carol", "frank", "adam"])
def test_only_a_data_manager_or_the_pi_records_what_was_found(request, oei, dina, who):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)

    with pytest.raises(PermissionDenied):
        review(allocation_list, request.getfixturevalue(who))

    assert ListSuspension.objects.get().reviewed_at is None


def test_it_needs_a_finding_and_a_decision(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)

    with pytest.raises(ValidationError) as refused:
        review(allocation_list, dina, finding=" ", decision="")

    assert set(refused.value.error_dict) == {"finding", "decision"}


def test_it_needs_a_person_of_the_other_role_to_agree(oei, dina, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    review(allocation_list, dina)
    other_manager = UserFactory(username="dmitri", roles=[Role.DATA_MANAGER])

    with pytest.raises(PermissionDenied):
        agree(allocation_list, other_manager)
    with pytest.raises(ValidationError) as refused:
        agree(allocation_list, dina)

    assert "another person" in refused.value.messages[0]
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is not None


def test_an_account_holding_both_roles_can_never_both_write_and_agree(oei, dina):
    both = UserFactory(username="dora", roles=[Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR])
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    review(allocation_list, both)

    with pytest.raises(ValidationError) as refused:
        agree(allocation_list, both)

    assert "another person" in refused.value.messages[0]
    assert ListSuspension.objects.get().approved_at is None


def test_the_database_refuses_the_writer_as_the_approver_when_the_service_forgets_to(monkeypatch, oei, dina):
    both = UserFactory(username="dora", roles=[Role.DATA_MANAGER, Role.PRINCIPAL_INVESTIGATOR])
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    review(allocation_list, both)
    monkeypatch.setattr(lists, "review_agreement_refusal", lambda user, suspension: None)

    with pytest.raises(ValidationError) as refused:
        agree(allocation_list, both)

    assert "another person" in refused.value.messages[0]
    assert ListSuspension.objects.get().approved_at is None
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is not None


def test_it_asks_for_a_new_review_when_the_list_shows_new_findings_before_the_agreement(oei, dina, paula):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    review(allocation_list, dina)
    flip_entry(allocation_list, 10)
    verify(allocation_list, dina)

    with pytest.raises(ValidationError) as refused:
        agree(allocation_list, paula)
    assert "again" in refused.value.messages[0]
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is not None

    review(allocation_list, dina, finding="Positions 9 and 10 were changed by the restore script.")
    agree(allocation_list, paula)
    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is None


def test_the_pages_say_failed_verification_and_the_pi_agrees_on_the_list_page(client, oei, dina, paula, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    client.force_login(dina)

    response = client.post(reverse("randomization:verify", args=["OEI"]), follow=True)
    assert "data-list-suspended" in response.content.decode()
    overview = client.get(reverse("randomization:lists")).content.decode()
    assert "data-list-suspended" in overview and "Failed verification" in overview
    response = client.post(
        reverse("randomization:review", args=["OEI"]),
        {"finding": "Position 9 was changed by the restore script.", "decision": "Resume: entry 9 is unused."},
    )
    assert response.status_code == 302

    client.force_login(paula)
    page = client.get(reverse("randomization:list", args=["OEI"])).content.decode()
    assert "Position 9 was changed by the restore script." in page
    assert reverse("randomization:review_approve", args=["OEI"]) in page
    client.post(reverse("randomization:review_approve", args=["OEI"]))

    assert AllocationList.objects.get(pk=allocation_list.pk).suspended_at is None
    assert "data-list-suspended" not in client.get(reverse("randomization:lists")).content.decode()


def test_the_researcher_reads_why_the_family_cannot_be_randomised(client, oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    flip_entry(allocation_list, 9)
    verify(allocation_list, dina)
    family = ready_to_randomise(oei, by=alice)
    client.force_login(alice)

    response = client.post(reverse("randomization:randomise", args=[family.study_id]), {"site": "OEI", "confirm": "on"})

    assert response.status_code == 200
    assert "failed verification" in str(response.context["form"].non_field_errors())
    assert not Allocation.objects.exists()
