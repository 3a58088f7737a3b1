"""The kinds of message, registered by the apps that send them (in their `AppConfig.ready()`).

This app sits just above `trial`, so it cannot know what a follow-up or a caseload is: each kind brings its own
words (a subject and a body from the message's context, written in the recipient's language when sent or read),
the page it links to, and the check made again when it is sent (still due, not done, family not withdrawn).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.functional import Promise


def _always(message) -> bool:
    return True


@dataclass(frozen=True)
class Kind:
    code: str
    label: str | Promise
    subject: Callable[[dict], str]
    body: Callable[[dict], str]
    # Asked again just before sending: False cancels the message (the work was done, the family withdrew).
    still_due: Callable[..., bool] = field(default=_always)
    # The page the message is about, for the inbox (a URL), or None.
    link: Callable[[dict], str | None] = field(default=lambda context: None)


_kinds: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    _kinds[kind.code] = kind


def get_kind(code: str) -> Kind | None:
    return _kinds.get(code)


def all_kinds() -> list[Kind]:
    return list(_kinds.values())
