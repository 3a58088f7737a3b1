from django import template

from visits import weeks

register = template.Library()


@register.filter
def quarter_hours(quarters: int) -> str:
    """Quarter-hours as hours in the page's language: 5 → "1.25" ("1,25" in Norwegian)."""
    return weeks.format_hours(quarters or 0)
