import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _control_digit(digits: list[int], weights: tuple[int, ...]) -> int | None:
    remainder = 11 - sum(d * w for d, w in zip(digits, weights)) % 11
    if remainder == 11:
        return 0
    if remainder == 10:
        return None  # no valid number has this
    return remainder


def validate_national_id_number(value: str) -> None:
    """A Norwegian national identity number (fødselsnummer or D-number): 11 digits, two check digits."""
    number = re.sub(r"\s", "", value)
    if not re.fullmatch(r"\d{11}", number):
        raise ValidationError(_("A national identity number has 11 digits."), code="format")
    digits = [int(c) for c in number]
    if _control_digit(digits[:9], _WEIGHTS_1) != digits[9] or _control_digit(digits[:10], _WEIGHTS_2) != digits[10]:
        raise ValidationError(_("This national identity number is not valid; check the digits."), code="checksum")


def validate_phone(value: str) -> None:
    if not re.fullmatch(r"\+?[\d\s\-()]{8,20}", value.strip()):
        raise ValidationError(_("Enter a phone number of 8 or more digits, for example 912 34 567."), code="phone")
