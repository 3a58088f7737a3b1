"""The one state function, at every edge of a window, and the grid's filter agreeing with it day by day."""

from datetime import date, timedelta

import pytest

from families.tests.factories import family_in_state
from followups.models import Assessment
from followups.selectors import state_q
from followups.states import State, assessment_state

OPENS, CLOSES = date(2026, 3, 1), date(2026, 3, 31)


def state(on: date, *, status: str = "scheduled", closes_on: date | None = CLOSES, closing_days: int = 3) -> State:
    return assessment_state(status=status, opens_on=OPENS, closes_on=closes_on, on=on, closing_days=closing_days)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (OPENS - timedelta(days=1), State.NOT_YET_OPEN),
        (OPENS, State.OPEN),  # from the first minute of the opening day (a local date)
        (CLOSES - timedelta(days=4), State.OPEN),
        (CLOSES - timedelta(days=3), State.CLOSING_SOON),  # three days before it closes
        (CLOSES, State.CLOSING_SOON),  # to the last minute of the closing day
        (CLOSES + timedelta(days=1), State.OVERDUE),
    ],
)
def test_it_places_a_scheduled_assessment_in_its_window(on, expected):
    assert state(on) == expected


def test_a_recorded_outcome_is_its_own_state_whatever_the_day():
    for status in ("completed", "partly", "missed", "refused", "stopped"):
        for on in (OPENS - timedelta(days=9), OPENS, CLOSES + timedelta(days=9)):
            assert state(on, status=status) == status


def test_a_window_without_an_end_stays_open():
    assert state(date(2030, 1, 1), closes_on=None) == State.OPEN
    assert state(OPENS - timedelta(days=1), closes_on=None) == State.NOT_YET_OPEN


def test_closing_soon_follows_the_setting():
    assert state(CLOSES - timedelta(days=7), closing_days=7) == State.CLOSING_SOON
    assert state(CLOSES - timedelta(days=8), closing_days=7) == State.OPEN


def test_the_database_filter_agrees_with_the_state_function(oei, alice):
    family = family_in_state("consented", site=oei, by=alice)
    rows = []
    for months, (opens, closes, status) in enumerate(
        [
            (OPENS, CLOSES, "scheduled"),
            (OPENS, None, "scheduled"),
            (OPENS, OPENS, "scheduled"),
            (OPENS, CLOSES, "missed"),
        ],
        start=1,
    ):
        rows.append(
            Assessment.objects.create(
                family=family,
                months=months,
                opens_on=opens,
                target_on=opens,
                closes_on=closes,
                status=status,
                done_on=OPENS if status == "missed" else None,
                reason="not_reached" if status == "missed" else "",
            )
        )
    for offset in range(-3, 36):
        on = OPENS + timedelta(days=offset)
        for wanted in State:
            in_database = set(
                Assessment.objects.filter(
                    state_q(wanted, on=on, closing_days=3), family=family, months__gt=0
                ).values_list("pk", flat=True)
            )
            in_python = {
                row.pk
                for row in rows
                if assessment_state(
                    status=row.status, opens_on=row.opens_on, closes_on=row.closes_on, on=on, closing_days=3
                )
                == wanted
            }
            assert in_database == in_python, (on, wanted)
