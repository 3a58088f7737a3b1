"""Before a list is generated or extended, the data manager sees the predictability of the design chosen (a
confirmation page, no JavaScript), and a design with a single block size needs a recorded reason: with one known
size, the last entry of every block can be foreseen. The reason is kept with the generation and shown on the
list's page and its printable commitment."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from randomization import lists
from randomization.models import AllocationList, ListSegment
from randomization.tests.factories import allocation_list_for

FIXED_REASON = "The ethics committee asked for blocks of 4, as in the pilot."


def generate_data(oei, **changes) -> dict:
    return {"site": oei.pk, "block_sizes": "2, 4, 6", "ratio_intervention": 1, "ratio_control": 1, "length": ""} | (
        changes
    )


def test_the_generate_form_leads_to_a_confirmation_with_the_designs_predictability(client, oei, dina):
    client.force_login(dina)

    response = client.post(reverse("randomization:generate"), generate_data(oei))

    assert response.status_code == 200
    page = response.content.decode()
    assert "data-confirmation" in page
    assert "70.3%" in page  # blocks of 2, 4 or 6, 1:1
    assert 'name="design_reason"' not in page.replace('type="hidden" name="design_reason"', "")
    assert not AllocationList.objects.exists()


def test_it_generates_the_list_once_confirmed(client, oei, dina):
    client.force_login(dina)

    response = client.post(reverse("randomization:generate"), generate_data(oei, confirmed="yes"))

    assert response.status_code == 302
    assert ListSegment.objects.get().block_sizes == [2, 4, 6]


def test_it_asks_for_a_reason_on_the_confirmation_of_a_single_block_size(client, oei, dina):
    client.force_login(dina)

    confirmation = client.post(reverse("randomization:generate"), generate_data(oei, block_sizes="4"))
    assert "70.8%" in confirmation.content.decode()
    assert 'data-visible-field="design_reason"' in confirmation.content.decode()

    refused = client.post(reverse("randomization:generate"), generate_data(oei, block_sizes="4", confirmed="yes"))
    assert refused.status_code == 200
    assert "data-confirmation" in refused.content.decode()
    assert refused.context["form"].errors["design_reason"]
    assert not AllocationList.objects.exists()

    response = client.post(
        reverse("randomization:generate"),
        generate_data(oei, block_sizes="4", confirmed="yes", design_reason=FIXED_REASON),
    )
    assert response.status_code == 302
    assert ListSegment.objects.get().design_reason == FIXED_REASON


def test_the_list_page_and_the_commitment_show_the_reason_for_a_single_block_size(client, oei, dina):
    allocation_list_for(oei, by=dina, block_sizes=[4], design_reason=FIXED_REASON)
    client.force_login(dina)
    for name in ("randomization:list", "randomization:commitment"):
        assert FIXED_REASON in client.get(reverse(name, args=["OEI"])).content.decode(), name


def test_a_single_block_size_needs_a_reason_in_the_service_too(oei, dina):
    with pytest.raises(ValidationError) as refused:
        allocation_list_for(oei, by=dina, block_sizes=[6], design_reason="  ")
    assert set(refused.value.error_dict) == {"design_reason"}
    assert not AllocationList.objects.exists()


def test_an_extension_with_a_single_block_size_needs_a_reason(oei, dina):
    allocation_list = allocation_list_for(oei, by=dina)
    with pytest.raises(ValidationError) as refused:
        lists.allocation_list_extend(
            allocation_list=allocation_list, additional=4, reason="More", extended_by=dina, block_sizes=[2]
        )
    assert set(refused.value.error_dict) == {"design_reason"}
    lists.allocation_list_extend(
        allocation_list=allocation_list,
        additional=4,
        reason="More",
        extended_by=dina,
        block_sizes=[2],
        design_reason="Only four families are left to recruit.",
    )
    assert ListSegment.objects.get(number=2).design_reason == "Only four families are left to recruit."


def test_the_extend_form_leads_to_a_confirmation_with_the_designs_predictability(client, oei, dina):
    allocation_list_for(oei, by=dina)
    client.force_login(dina)
    url = reverse("randomization:extend", args=["OEI"])
    data = {"additional": 6, "block_sizes": "2", "reason": "More referrals than expected"}

    confirmation = client.post(url, data)
    assert "data-confirmation" in confirmation.content.decode()
    assert "75.0%" in confirmation.content.decode()
    assert ListSegment.objects.count() == 1

    back = client.post(url, {**data, "back": "1"})
    assert back.status_code == 200 and back.context["form"]["reason"].value() == data["reason"]

    done = client.post(url, {**data, "confirmed": "yes", "design_reason": "Pairs keep the last families balanced."})
    assert done.status_code == 302
    assert ListSegment.objects.count() == 2


def test_a_design_that_cannot_hold_the_ratio_is_refused_before_the_confirmation(client, oei, dina):
    client.force_login(dina)

    response = client.post(reverse("randomization:generate"), generate_data(oei, block_sizes="3, 5"))

    assert response.status_code == 200
    assert "data-confirmation" not in response.content.decode()
    assert response.context["form"].errors["block_sizes"]


def test_the_printable_commitment_explains_how_to_check_it_without_pointing_into_the_code(client, oei, dina):
    allocation_list_for(oei, by=dina)
    client.force_login(dina)

    page = client.get(reverse("randomization:commitment", args=["OEI"])).content.decode()

    assert "docs/" not in page and ".md" not in page
    assert "data-how-to-check" in page
    for words in ("sha256sum allocation-list-OEI.txt", "canonical text", "seed", "up to its last position"):
        assert words in page, words
