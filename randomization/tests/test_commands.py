"""The data manager's commands: generating a sealed list (the commitment printed, never an arm), verifying
lists, and the demo trial's lists passing verification."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from randomization.models import AllocationList, ListSegment
from randomization.tests.factories import allocation_list_for, randomised_family

ARM_WORDS = ("intervention", "control")


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_generates_a_list_and_prints_its_commitment_but_no_arm(oei, dina):
    output = run("generate_allocation_list", "--site", "OEI", "--by", "dina")
    allocation_list = AllocationList.objects.get(site=oei)
    assert allocation_list.created_by == dina
    assert allocation_list.length >= 18
    assert f"SHA-256 commitment: {allocation_list.commitment}" in output
    assert f"{allocation_list.length} entries" in output
    assert not any(word in output.lower() for word in ARM_WORDS)


def test_it_generates_a_list_of_the_design_asked_for(oei, dina):
    output = run("generate_allocation_list", "--site", "OEI", "--by", "dina", "--block-sizes", "3, 6", "--ratio", "2:1")
    allocation_list = AllocationList.objects.get(site=oei)
    assert allocation_list.ratio == (2, 1)
    assert ListSegment.objects.get().block_sizes == [3, 6]
    assert "ratio 2:1, block sizes 3, 6" in output
    assert not any(word in output.lower() for word in ARM_WORDS)


def test_it_generates_a_single_block_size_only_with_a_reason(oei, dina):
    with pytest.raises(CommandError, match="single block size"):
        run("generate_allocation_list", "--site", "OEI", "--by", "dina", "--block-sizes", "4")
    assert not AllocationList.objects.exists()
    run("generate_allocation_list", "--site", "OEI", "--by", "dina", "--block-sizes", "4", "--design-reason", "Pilot")
    assert ListSegment.objects.get().design_reason == "Pilot"


def test_it_refuses_to_generate_for_someone_who_is_not_a_data_manager(oei, alice):
    with pytest.raises(CommandError, match="alice is not a data manager"):
        run("generate_allocation_list", "--site", "OEI", "--by", "alice")
    assert not AllocationList.objects.exists()


def test_it_refuses_to_generate_for_an_unknown_site_or_user(oei, dina):
    with pytest.raises(CommandError, match="No site has the code 'XYZ'"):
        run("generate_allocation_list", "--site", "XYZ", "--by", "dina")
    with pytest.raises(CommandError, match="No active user"):
        run("generate_allocation_list", "--site", "OEI", "--by", "nobody")
    assert not AllocationList.objects.exists()


def test_it_refuses_a_second_list_and_a_bad_design(oei, dina):
    run("generate_allocation_list", "--site", "OEI", "--by", "dina")
    with pytest.raises(CommandError, match="already has an allocation list"):
        run("generate_allocation_list", "--site", "OEI", "--by", "dina")
    assert AllocationList.objects.count() == 1
    with pytest.raises(CommandError, match="--ratio"):
        run("generate_allocation_list", "--site", "LAR", "--by", "dina", "--ratio", "one to one")
    with pytest.raises(CommandError, match="multiple of 2"):
        run("generate_allocation_list", "--site", "LAR", "--by", "dina", "--block-sizes", "3")
    assert AllocationList.objects.count() == 1


def test_it_verifies_a_fresh_list(oei, dina, alice):
    allocation_list = allocation_list_for(oei, by=dina)
    randomised_family(oei, researcher=alice)
    output = run("verify_allocation_list", "--by", "dina")
    assert f"OEI: passed. Commitment {allocation_list.commitment}" in output
    verification = allocation_list.verifications.get()
    assert verification.passed and verification.verified_by == dina


def test_it_fails_verification_after_a_commitment_is_changed(oei, lar, dina):
    allocation_list_for(oei, by=dina)
    allocation_list_for(lar, by=dina)
    AllocationList.objects.filter(site=oei).update(commitment="0" * 64)
    out = StringIO()
    with pytest.raises(CommandError, match="Verification failed for OEI"):
        call_command("verify_allocation_list", stdout=out)
    output = out.getvalue()
    assert "OEI: FAILED" in output
    assert "LAR: passed" in output
    assert "current commitment is not the one its last generation gave" in output
    assert not any(word in output.lower() for word in ARM_WORDS)


def test_it_verifies_one_site_and_refuses_an_unknown_one(oei, lar, dina):
    allocation_list_for(oei, by=dina)
    output = run("verify_allocation_list", "--site", "OEI")
    assert "OEI: passed" in output
    with pytest.raises(CommandError, match="LAR has no allocation list"):
        run("verify_allocation_list", "--site", "LAR")


def test_it_loads_a_demo_trial_whose_lists_pass_verification(settings, tmp_path, oei, lar):
    settings.VAR_DIR = tmp_path
    run("load_demo")
    assert (tmp_path / "demo-users.txt").exists()
    assert set(AllocationList.objects.values_list("site__code", flat=True)) >= {"OEI", "LAR"}
    # Four families of the enrolment demo, and three of the follow-up demo's (randomised months ago).
    assert AllocationList.objects.get(site=oei).used == 7
    assert AllocationList.objects.get(site=lar).used == 2
    output = run("verify_allocation_list", "--by", "datamanager")
    assert "OEI: passed" in output and "LAR: passed" in output
    assert "FAILED" not in output
