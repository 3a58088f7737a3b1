"""Gunicorn settings for the web container (`gunicorn --config trial/gunicorn.conf.py trial.wsgi`)."""

import os

bind = "0.0.0.0:8000"
# Sync workers: each request is short; WEB_CONCURRENCY sets how many run at once.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = 60
graceful_timeout = 30
# Docker's /tmp may be on a slow overlay filesystem; the workers' heartbeat files belong in memory.
worker_tmp_dir = "/dev/shm"  # noqa: S108
# A worker is replaced after this many requests, so a slow leak never grows without bound.
max_requests = 1000
max_requests_jitter = 100
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_worker_init(worker) -> None:
    """Leave the objects made at start-up (Django's apps, URL patterns, translations) out of every later garbage
    collection: pages that build thousands of rows (the caseload of every site) then collect much less often."""
    import gc

    gc.collect()
    gc.freeze()
