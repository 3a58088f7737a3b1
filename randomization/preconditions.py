"""Conditions of apps above this one that a family must meet before it is randomised (for example a baseline
assessment done first). Each app registers a check in its `AppConfig.ready()`; a check takes the family and
returns the translated reason it cannot be randomised yet, or None. They are asked on the randomisation page and
again under the family's lock inside the randomisation's transaction."""

from collections.abc import Callable

from families.models import Family

Check = Callable[[Family], str | None]

_checks: list[Check] = []


def register_randomisation_check(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def randomisation_refusals(family: Family) -> list[str]:
    """Why `family` cannot be randomised now (empty when it can, as far as the apps above know)."""
    return [reason for check in _checks if (reason := check(family)) is not None]
