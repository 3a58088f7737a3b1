from django import template

from visits import weeks
from visits.forms import duration_label

register = template.Library()


@register.filter
def quarter_hours(quarters: int) -> str:
    """Quarter-hours as hours in the page's language: 5 → "1.25" ("1,25" in Norwegian)."""
    return weeks.format_hours(quarters or 0)


@register.filter
def duration(quarters: int) -> str:
    """Quarter-hours as the partner chose them: 6 → "1 h 30 min" ("1 t 30 min" in Norwegian)."""
    return duration_label(quarters or 0)
