"""Hostile input to the allocation lists' forms: always a form error on the page, never a 500 and never a list
or generation made. ("²" and other Unicode digits pass str.isdigit() but not int(); thousands of digits fail deep
inside Python or the database.)"""

import pytest
from django.urls import reverse

from randomization.models import AllocationList, ListSegment
from randomization.tests.factories import allocation_list_for

HOSTILE_BLOCK_SIZES = {
    "superscript two": "²",
    "arabic-indic three": "٣",
    "fullwidth digits": "\uff12, \uff14",
    "five thousand digits": "9" * 5000,
    "a negative size": "-2",
    "a negative among others": "2, -4, 6",
    "a huge list": ", ".join(["2"] * 5000),
    "twenty-one sizes": ", ".join(str(2 * n) for n in range(1, 22)),
    "a number past the digits allowed": "2222222",
    "letters": "two, four",
    "nothing but separators": " , ; ",
}


@pytest.mark.parametrize("text", HOSTILE_BLOCK_SIZES.values(), ids=HOSTILE_BLOCK_SIZES.keys())
def test_it_answers_hostile_block_sizes_on_the_generate_form_with_a_form_error(client, oei, dina, text):
    client.force_login(dina)

    response = client.post(
        reverse("randomization:generate"),
        {"site": oei.pk, "block_sizes": text, "ratio_intervention": 1, "ratio_control": 1, "length": ""},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["block_sizes"]
    assert not AllocationList.objects.exists()


@pytest.mark.parametrize("text", HOSTILE_BLOCK_SIZES.values(), ids=HOSTILE_BLOCK_SIZES.keys())
def test_it_answers_hostile_block_sizes_on_the_extend_form_with_a_form_error(client, oei, dina, text):
    allocation_list_for(oei, by=dina)
    client.force_login(dina)

    response = client.post(
        reverse("randomization:extend", args=["OEI"]), {"additional": 6, "block_sizes": text, "reason": "More"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["block_sizes"]
    assert ListSegment.objects.count() == 1


HOSTILE_NUMBERS = {"superscript two": "²", "five thousand digits": "9" * 5000, "negative": "-6", "letters": "six"}


@pytest.mark.parametrize("text", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
@pytest.mark.parametrize("field", ["ratio_intervention", "ratio_control", "length"])
def test_it_answers_hostile_numbers_on_the_generate_form_with_a_form_error(client, oei, dina, field, text):
    client.force_login(dina)
    data = {"site": oei.pk, "block_sizes": "2, 4", "ratio_intervention": 1, "ratio_control": 1, "length": ""}

    response = client.post(reverse("randomization:generate"), {**data, field: text})

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert not AllocationList.objects.exists()


@pytest.mark.parametrize("text", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS.keys())
def test_it_answers_a_hostile_number_of_entries_to_add_with_a_form_error(client, oei, dina, text):
    allocation_list_for(oei, by=dina)
    client.force_login(dina)

    response = client.post(
        reverse("randomization:extend", args=["OEI"]), {"additional": text, "block_sizes": "2", "reason": "More"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["additional"]
    assert ListSegment.objects.count() == 1
