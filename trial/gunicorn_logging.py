"""Gunicorn's logs as the app's: JSON lines when LOG_FORMAT is json (trial/logs.py), and an access log that never
holds a query string (it may hold a search term) nor the client's address or referrer, and does hold the request id
the app returned (X-Request-ID), so that an access line and the app's lines of one request can be matched."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

from trial.logs import REQUEST_ID_HEADER, json_formatter, log_format


class TrialLogger(glogging.Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if log_format() == "json":
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(json_formatter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if log_format() != "json":
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
        request_id = next((value for name, value in headers if name.lower() == REQUEST_ID_HEADER.lower()), None)
        fields = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": request_id,
        }
        try:
            self.access_log.log(logging.INFO, "request", extra=fields)
        except Exception:
            self.exception("The access log line could not be written.")
