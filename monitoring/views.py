import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from monitoring.metrics import exposition


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken tells nothing about how much of the token a guess got right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape: only with the bearer token METRICS_TOKEN; with none set, there is no such page."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound(b"", content_type="text/plain")
    if not _bearer_matches(request, token):
        response = HttpResponse(b"", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    else:
        response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    add_never_cache_headers(response)
    return response
