"""The client's address, as the trusted reverse proxy reports it (docs/deployment.md, "HTTPS").

Behind the proxy every request reaches Gunicorn from the proxy's address, so a lockout by address (django-axes)
would lock a username out for everybody. With `TRUSTED_PROXY_COUNT` proxies in front, each appends the address it
saw to X-Forwarded-For, so the client's address is that many entries from the right; anything further left was
written by the client and may be forged. Without a configured proxy the header is ignored.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    connection_address = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return connection_address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < proxies:
        return connection_address
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        # Not what our proxy writes: the request did not come through it as configured.
        return connection_address
