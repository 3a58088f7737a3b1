"""Throttling per token (settings API_RATE, API_WRITE_RATE), counted in the cache (Redis in production): a script
that loops too fast gets 429 problems with Retry-After, and never slows the pages of the trial's users."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from api.authentication import token_of


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str:
        return settings.API_RATE

    def get_cache_key(self, request, view) -> str | None:
        token = token_of(request)
        if token is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        # The token's prefix, not its row id: unique and never reused (SQLite hands a rolled-back row's id out again,
        # and a new token must not inherit an old one's count).
        return self.cache_format % {"scope": self.scope, "ident": token.prefix}


class TokenWriteRateThrottle(TokenRateThrottle):
    """Calls that change something (POST), counted apart and more tightly."""

    scope = "token-write"

    def get_rate(self) -> str:
        return settings.API_WRITE_RATE

    def allow_request(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)
