"""Response headers that every page of a signed-in user needs."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers


class NoStoreForSignedInUsers:
    """A page shown to a signed-in user is never stored by the browser or a proxy (Cache-Control: no-store,
    private): pages show identifiers, notes and arms, which must not stay on a shared computer after logging out
    (the Back button, the disk cache). Pages for anonymous visitors (the login page) keep their own headers, and
    static files are answered by WhiteNoise before this runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response
