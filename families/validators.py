import re
from datetime import date

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Household members born before this are typing mistakes (the trial keeps birth years from 1900).
EARLIEST_BIRTH_YEAR = 1900

_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _control_digit(digits: list[int], weights: tuple[int, ...]) -> int | None:
    remainder = 11 - sum(d * w for d, w in zip(digits, weights)) % 11
    if remainder == 11:
        return 0
    if remainder == 10:
        return None  # no valid number has this
    return remainder


def _is_birth_date(day: int, month: int, year: int) -> bool:
    # D-numbers add 40 to the day, H-numbers 40 to the month, synthetic test numbers 80 to the month.
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    # The century is in the individual number; a leap day is possible if any century allows it.
    for century in (2000, 1900):
        try:
            date(century + year, month, day)
        except ValueError:
            continue
        return True
    return False


def validate_national_id_number(value: str) -> None:
    """A Norwegian national identity number (fødselsnummer or D-number): a birth date, 11 digits, two check digits."""
    number = re.sub(r"\s", "", value)
    if not re.fullmatch(r"[0-9]{11}", number):
        raise ValidationError(_("A national identity number has 11 digits."), code="format")
    digits = [int(c) for c in number]
    if not _is_birth_date(int(number[0:2]), int(number[2:4]), int(number[4:6])):
        raise ValidationError(_("This national identity number is not valid; check the digits."), code="date")
    if _control_digit(digits[:9], _WEIGHTS_1) != digits[9] or _control_digit(digits[:10], _WEIGHTS_2) != digits[10]:
        raise ValidationError(_("This national identity number is not valid; check the digits."), code="checksum")


def validate_phone(value: str) -> None:
    value = value.strip()
    if not re.fullmatch(r"\+?[0-9 \-()]{8,20}", value) or len(re.sub(r"[^0-9]", "", value)) < 8:
        raise ValidationError(_("Enter a phone number of 8 or more digits, for example 912 34 567."), code="phone")


def validate_parent_birth_year(year: int) -> None:
    if not EARLIEST_BIRTH_YEAR <= year <= timezone.localdate().year:
        raise ValidationError(_("A parent's birth year must lie between 1900 and this year."), code="birth_year")


def validate_child_birth_date(born: date) -> None:
    if born > timezone.localdate():
        raise ValidationError(_("A child's birth date cannot be in the future."), code="future")
    if born.year < EARLIEST_BIRTH_YEAR:
        raise ValidationError(_("The date is too far in the past; check the year."), code="too_early")
