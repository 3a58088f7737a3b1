from django import template

from followups.selectors import time_point_label
from followups.states import STYLES, StateStyle

register = template.Library()


@register.filter
def time_point(months: int) -> str:
    """ "baseline" or "3 months"."""
    return time_point_label(months)


@register.filter
def state_style(state: str) -> StateStyle | None:
    return STYLES.get(state)
