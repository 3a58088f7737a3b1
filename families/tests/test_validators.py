"""The checks on direct identifiers a researcher types: Norwegian national identity numbers and phones."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from families.validators import validate_national_id_number, validate_phone

WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 check digit as Skatteetaten defines it; None where no valid number exists."""
    remainder = 11 - sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return {11: 0, 10: None}.get(remainder, remainder)


def with_check_digits(first_nine: int | str, *, individual: int = 0) -> str:
    """`first_nine` as DDMMYY (+ individual number) completed with correct check digits, trying
    individual numbers from `individual` on (some have no valid first check digit)."""
    for candidate in range(individual, individual + 50):
        base = f"{first_nine}{candidate:03d}"
        first = check_digit(base, WEIGHTS_1)
        second = check_digit(f"{base}{first}", WEIGHTS_2) if first is not None else None
        if second is not None:
            return f"{base}{first}{second}"
    raise AssertionError("no valid individual number found")


def national_id_number(born: date, individual: int, *, d_number: bool = False) -> str:
    day = born.day + 40 if d_number else born.day
    return with_check_digits(f"{day:02d}{born.month:02d}{born.year % 100:02d}", individual=individual)


VALID_NUMBERS = [
    national_id_number(date(1990, 1, 1), 123),
    national_id_number(date(1985, 12, 31), 456),
    national_id_number(date(2001, 2, 28), 501),
    national_id_number(date(1975, 7, 15), 0),
    national_id_number(date(2012, 2, 29), 999 - 49),
]
D_NUMBER = national_id_number(date(1980, 3, 15), 200, d_number=True)


def messages_of(value: str, validator=validate_national_id_number) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        validator(value)
    return [str(message) for message in refused.value.messages]


@pytest.mark.parametrize("number", VALID_NUMBERS)
def test_it_accepts_a_valid_national_identity_number(number):
    assert len(number) == 11
    validate_national_id_number(number)


def test_it_accepts_a_number_checked_by_hand():
    # Worked by hand: 0·3+1·7+0·6+1·1+9·8+0·9+1·4+2·5+4·2 = 102, 102 mod 11 = 3, 11-3 = 8;
    # 0·5+1·4+0·3+1·2+9·7+0·6+1·5+2·4+4·3+8·2 = 110, 110 mod 11 = 0, so the second digit is 0.
    assert check_digit("010190124", WEIGHTS_1) == 8
    assert check_digit("0101901248", WEIGHTS_2) == 0
    validate_national_id_number("01019012480")


def test_it_accepts_a_d_number():
    assert int(D_NUMBER[0]) >= 4
    validate_national_id_number(D_NUMBER)


def test_it_accepts_a_number_typed_with_spaces():
    number = VALID_NUMBERS[0]
    validate_national_id_number(f"{number[:6]} {number[6:]}")
    validate_national_id_number(f" {number} ")


@pytest.mark.parametrize(
    "value",
    ["", "1234567890", "123456789012", "0101901248", "010190124800", "0101-9012480"],
    ids=["empty", "ten digits", "twelve digits", "one digit missing", "one digit extra", "with a dash"],
)
def test_it_refuses_a_number_of_the_wrong_length_with_a_clear_message(value):
    assert messages_of(value) == ["A national identity number has 11 digits."]


@pytest.mark.parametrize("value", ["0101901248a", "ABCDEFGHIJK", "01O19012480", "01019012480!"])
def test_it_refuses_letters_with_a_clear_message(value):
    assert messages_of(value) == ["A national identity number has 11 digits."]


@pytest.mark.parametrize("number", [*VALID_NUMBERS, D_NUMBER])
def test_it_refuses_a_wrong_second_check_digit(number):
    wrong = number[:10] + str((int(number[10]) + 1) % 10)
    assert messages_of(wrong) == ["This national identity number is not valid; check the digits."]


@pytest.mark.parametrize("number", [*VALID_NUMBERS, D_NUMBER])
def test_it_refuses_a_wrong_first_check_digit(number):
    wrong = number[:9] + str((int(number[9]) + 1) % 10) + number[10]
    assert messages_of(wrong) == ["This national identity number is not valid; check the digits."]


def test_it_refuses_two_swapped_digits():
    number = VALID_NUMBERS[0]  # 01019012480: swap the first two digits of the individual number
    swapped = number[:6] + number[7] + number[6] + number[8:]
    assert swapped != number
    assert messages_of(swapped) == ["This national identity number is not valid; check the digits."]


def test_it_refuses_a_number_whose_check_digit_would_be_10():
    base = next(f"010190{n:03d}" for n in range(1000) if check_digit(f"010190{n:03d}", WEIGHTS_1) is None)
    for guess in "0123456789":
        second = check_digit(base + guess, WEIGHTS_2)
        value = base + guess + str(second if second is not None else 0)
        assert messages_of(value) == ["This national identity number is not valid; check the digits."]


def test_it_tells_the_two_mistakes_apart_by_code():
    with pytest.raises(ValidationError) as short:
        validate_national_id_number("123")
    with pytest.raises(ValidationError) as checksum:
        validate_national_id_number(VALID_NUMBERS[0][:10] + str((int(VALID_NUMBERS[0][10]) + 1) % 10))
    assert short.value.code == "format"
    assert checksum.value.code == "checksum"


def test_it_refuses_a_number_with_an_impossible_birth_date():
    # Eleven zeros pass both mod-11 checks, but no one is born on day 0 of month 0.
    assert check_digit("000000000", WEIGHTS_1) == 0
    assert check_digit("0000000000", WEIGHTS_2) == 0
    with pytest.raises(ValidationError):
        validate_national_id_number("00000000000")


@pytest.mark.parametrize("ddmmyy", ["320190", "311190", "290289", "011390"])
def test_it_refuses_a_number_with_a_day_or_month_that_does_not_exist(ddmmyy):
    with pytest.raises(ValidationError):
        validate_national_id_number(with_check_digits(ddmmyy, individual=100))


def test_it_refuses_digits_from_other_scripts():
    # Arabic-Indic and full-width digits match Python's \d; a stored identifier must be 0-9.
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in VALID_NUMBERS[0])
    full_width = "".join(chr(0xFF10 + int(d)) for d in VALID_NUMBERS[0])
    for value in (arabic_indic, full_width):
        with pytest.raises(ValidationError):
            validate_national_id_number(value)


# --- Phone ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["91234567", "912 34 567", "+47 912 34 567", "+4791234567", "0047 91234567", "22-33-44-55", "(22) 33 44 55"],
)
def test_it_accepts_a_phone_number(phone):
    validate_phone(phone)


@pytest.mark.parametrize(
    "phone",
    ["1234567", "phone me", "91234567 ext 2", "+47 912 34 567 / 22 33 44 55", "9123456+7", "++4791234567"],
)
def test_it_refuses_a_phone_number_with_a_clear_message(phone):
    assert messages_of(phone, validate_phone) == ["Enter a phone number of 8 or more digits, for example 912 34 567."]


@pytest.mark.parametrize("phone", ["912 3456", "--------", "(((())))", "- - - - -", "12-34-56", "+1 2 3 4 5"])
def test_it_refuses_a_phone_number_with_fewer_than_8_digits(phone):
    # The message promises 8 or more digits; separators are not digits.
    with pytest.raises(ValidationError):
        validate_phone(phone)


def test_it_refuses_a_phone_number_in_other_scripts_digits():
    with pytest.raises(ValidationError):
        validate_phone("".join(chr(0xFF10 + int(d)) for d in "91234567"))
