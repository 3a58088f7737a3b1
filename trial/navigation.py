"""The main menu: each app says which of its pages belong in it and who sees them.

Layers run one way, so `base.html` cannot know the rules of the apps above `trial` (who may see a caseload, who
is blinded). Each app registers its menu items in its `AppConfig.ready()`, with the rule that decides who sees
them; the `navigation` context processor asks every item for the current user, in the order of `position`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise

from trial.roles import User


@dataclass(frozen=True)
class MenuItem:
    label: str | Promise
    url_name: str
    shown_to: Callable[[User], bool]
    # Where in the menu, smallest first: families from 10, Family Partner work from 20, randomisation from 30.
    position: int


@dataclass(frozen=True)
class MenuLink:
    label: str
    url: str
    current: bool


_items: list[MenuItem] = []


def register_menu_item(item: MenuItem) -> None:
    if not any(known.url_name == item.url_name for known in _items):
        _items.append(item)
        _items.sort(key=lambda known: known.position)


def menu_for(request: HttpRequest) -> list[MenuLink]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    match = getattr(request, "resolver_match", None)
    here = match.view_name if match else ""
    return [
        MenuLink(str(item.label), reverse(item.url_name), item.url_name == here)
        for item in _items
        if item.shown_to(user)
    ]


@dataclass(frozen=True)
class Home:
    """A role's home page, registered by the app that owns it (an assessor's worklist): the first whose rule
    holds for the user, in the order of `position`, wins over trial's own defaults."""

    url_name: str
    shown_to: Callable[[User], bool]
    position: int


_homes: list[Home] = []


def register_home(url_name: str, shown_to: Callable[[User], bool], position: int) -> None:
    if not any(known.url_name == url_name for known in _homes):
        _homes.append(Home(url_name, shown_to, position))
        _homes.sort(key=lambda known: known.position)


def registered_home_for(user: User) -> str | None:
    """The URL name of the registered home page for `user`, or None."""
    return next((home.url_name for home in _homes if home.shown_to(user)), None)
