"""What API tests share: a token for a user, and a client that sends it."""

import itertools
import json

from django.test import Client

from api.tokens import token_create

_names = itertools.count(1)


def key_for(user, *scopes: str, days: int = 30) -> str:
    """A new token of `user` with `scopes` (read is always held), returned as its whole key."""
    return token_create(user=user, name=f"test token {next(_names)}", scopes=["read", *scopes], days=days).key


class Api:
    """A Django test client that speaks JSON with a bearer token: api.get("/api/v1/me/"), api.post(path, {...})."""

    def __init__(self, key: str | None, *, language: str = "en") -> None:
        self.client = Client()
        self.headers = {"HTTP_ACCEPT_LANGUAGE": language}
        if key is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {}, **self.headers)

    def post(self, path: str, body=None):
        return self.client.post(path, json.dumps(body or {}), content_type="application/json", **self.headers)


def api_as(user, *scopes: str, language: str = "en") -> Api:
    return Api(key_for(user, *scopes), language=language)
