"""The state of an assessment on a day, for display (the grid, the worklist, the family page) and for the
reminders: one pure function, so that every page and every reminder agrees.

Window edges are whole days in Europe/Oslo: `on` is a local date (`trial.dates.today`), and a window is open from
the first minute of `opens_on` to the last minute of `closes_on`.
"""

from dataclasses import dataclass
from datetime import date

from django.db import models
from django.utils.translation import gettext_lazy as _


class State(models.TextChoices):
    NOT_YET_OPEN = "not_yet_open", _("not yet open")
    OPEN = "open", _("open")
    CLOSING_SOON = "closing_soon", _("closing soon")
    OVERDUE = "overdue", _("overdue")
    COMPLETED = "completed", _("completed")
    PARTLY = "partly", _("partly completed")
    MISSED = "missed", _("missed")
    REFUSED = "refused", _("refused")
    STOPPED = "stopped", _("stopped")


# Statuses recorded on the row that are their own state whatever the day.
_RECORDED_STATES = {
    "completed": State.COMPLETED,
    "partly": State.PARTLY,
    "missed": State.MISSED,
    "refused": State.REFUSED,
    "stopped": State.STOPPED,
}

# States with work still to do, for the worklist and the contact details.
TO_DO = (State.NOT_YET_OPEN, State.OPEN, State.CLOSING_SOON, State.OVERDUE)


def assessment_state(*, status: str, opens_on: date, closes_on: date | None, on: date, closing_days: int) -> State:
    """What an assessment is on the local date `on`: its recorded outcome, or, while scheduled, where the day
    stands in its window. "Closing soon" is from `closing_days` days before the window closes to its closing day
    (`TrialSettings.reminder_window_closes_days`). A window without an end (a baseline before randomisation)
    stays open."""
    if status in _RECORDED_STATES:
        return _RECORDED_STATES[status]
    if on < opens_on:
        return State.NOT_YET_OPEN
    if closes_on is None:
        return State.OPEN
    if on > closes_on:
        return State.OVERDUE
    if (closes_on - on).days <= closing_days:
        return State.CLOSING_SOON
    return State.OPEN


@dataclass(frozen=True)
class StateStyle:
    css: str  # a Bootstrap background/text pair; the label is always printed too (never colour alone)
    icon: str  # a short sign for the grid's cells, beside the label


STYLES: dict[str, StateStyle] = {
    State.NOT_YET_OPEN: StateStyle("text-bg-light border", "·"),
    State.OPEN: StateStyle("text-bg-info", "○"),
    State.CLOSING_SOON: StateStyle("text-bg-warning", "!"),
    State.OVERDUE: StateStyle("text-bg-danger", "!!"),
    State.COMPLETED: StateStyle("text-bg-success", "✓"),
    State.PARTLY: StateStyle("text-bg-primary", "◐"),
    State.MISSED: StateStyle("text-bg-secondary", "✗"),
    State.REFUSED: StateStyle("text-bg-dark", "✗"),
    State.STOPPED: StateStyle("text-bg-light text-decoration-line-through border", "\u2013"),
}
