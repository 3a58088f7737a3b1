"""A report's values as text for people (the page and the PDF), in the active language. Excel and CSV keep the
values themselves."""

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from reports.tables import Value

NOTHING = "\u2013"  # an en dash: no value (a share of nothing, a date not reached)


def number(value: float | int | Decimal, decimals: int = 0) -> str:
    """Rounded half up (Django's number_format cuts the digits off: 86.36 would be "86.3")."""
    rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return formats.number_format(rounded, decimals)


def percent(share: float | None) -> str:
    """A share 0..1 as a percentage with one decimal: "12.5%" in English, "12,5 %" in Norwegian."""
    if share is None:
        return NOTHING
    # Translators: a percentage; Norwegian puts a space before the sign: "%(percent)s %%".
    return _("%(percent)s%%") % {"percent": number(share * 100, 1)}


def day(value: date | datetime) -> str:
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        return formats.date_format(value, "SHORT_DATETIME_FORMAT")
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def month(value: date) -> str:
    return formats.date_format(value, "YEAR_MONTH_FORMAT")


def shown(value: Value | object, kind: str = "text") -> str:
    """A cell of a report's table as text, by its column's kind (reports.tables.Column)."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float | Decimal):
        if kind == "percent":
            return percent(float(value))
        if kind == "float" or not isinstance(value, int):
            return number(float(value), 1)
        return number(value)
    if isinstance(value, date):
        return month(value) if kind == "month" else day(value)
    return str(value)
