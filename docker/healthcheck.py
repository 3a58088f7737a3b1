"""The web container's health check: GET /healthz, healthy only on 200 (the image has no curl).

Django answers only for ALLOWED_HOSTS, so the request names the first of them as its Host.
"""

import os
import sys
import urllib.error
import urllib.request

allowed = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host.strip()]
host = allowed[0].lstrip(".") if allowed and allowed[0] != "*" else "localhost"
request = urllib.request.Request("http://127.0.0.1:8000/healthz", headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a fixed local URL)
        print(response.read().decode())
except urllib.error.HTTPError as error:  # 503: the body says which service is down
    print(error.read().decode(), file=sys.stderr)
    sys.exit(1)
except OSError as error:
    print(f"/healthz did not answer: {error}", file=sys.stderr)
    sys.exit(1)
