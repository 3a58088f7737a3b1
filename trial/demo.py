"""The demo trial that `manage.py load_demo` loads: `trial` makes the users, each app above it its own part.

Layers run one way, so the demo loader cannot import the apps above `trial`. Each app registers a step in its
`AppConfig.ready()`; the loader runs the steps in the order of `position` (families, then randomisation, then
the Family Partner's work), inside one transaction, and prints what each step says it made.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import User

from trial.models import Site


@dataclass(frozen=True)
class Demo:
    """What the steps build on: the sites by code and the demo users by username."""

    sites: dict[str, Site]
    users: dict[str, User]


@dataclass(frozen=True)
class DemoStep:
    load: Callable[[Demo], str]  # makes its part; returns one line for the console
    position: int


_steps: list[DemoStep] = []


def register_demo_step(step: DemoStep) -> None:
    if step not in _steps:
        _steps.append(step)
        _steps.sort(key=lambda known: known.position)


def demo_steps() -> list[DemoStep]:
    return list(_steps)
