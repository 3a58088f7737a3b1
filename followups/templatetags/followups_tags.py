from django import template
from django.utils.translation import gettext as _

from followups.states import STYLES, StateStyle

register = template.Library()


@register.filter
def time_point(months: int) -> str:
    """ "baseline" or "3 months"."""
    if months == 0:
        return _("baseline")
    return _("%(months)s months") % {"months": months}


@register.filter
def state_style(state: str) -> StateStyle | None:
    return STYLES.get(state)
