"""Gunicorn settings for the web container (`gunicorn --config trial/gunicorn.conf.py trial.wsgi`)."""

import os
import shutil
import tempfile
from pathlib import Path

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
# Gunicorn 25+ opens a control socket for `gunicornc` in $XDG_RUNTIME_DIR or $HOME/.gunicorn, one path per user: two
# Gunicorns of one user (a host running two instances, the stack tests) would share it, and nothing here uses it.
# Operators restart and scale through Docker Compose instead.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# JSON lines when LOG_FORMAT is json (production's default), and never a query string (trial/gunicorn_logging.py).
logger_class = "trial.gunicorn_logging.TrialLogger"
# The plain access line: the path without its query string, status, bytes, milliseconds and the request id.
access_log_format = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s'

# /metrics adds up the counts of every worker (monitoring/metrics.py): prometheus_client's multiprocess mode keeps
# them in memory-mapped files here. Set before the workers start, so each of them writes there; emptied when Gunicorn
# starts, so that a restart begins from zero (Prometheus' rate() takes a counter's reset in its stride). By default a
# folder of this Gunicorn's own in memory (/dev/shm), never on the data volume: a write into a memory-mapped file on
# a full disk kills the process with SIGBUS, which tests/stack/test_service_faults.py's full disk did to a worker.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    METRICS_DIRECTORY = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
else:
    _memory = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
    METRICS_DIRECTORY = Path(tempfile.mkdtemp(prefix="trial-metrics-", dir=_memory))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIRECTORY)


def on_starting(server) -> None:
    shutil.rmtree(METRICS_DIRECTORY, ignore_errors=True)
    METRICS_DIRECTORY.mkdir(parents=True, mode=0o700)


def on_exit(server) -> None:
    shutil.rmtree(METRICS_DIRECTORY, ignore_errors=True)


def child_exit(server, worker) -> None:
    """A worker that exited (max_requests, a crash) keeps its counts in the sum; its live gauges are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """Leave the objects made at start-up (Django's apps, URL patterns, translations) out of every later garbage
    collection: pages that build thousands of rows (the caseload of every site) then collect much less often."""
    import gc

    gc.collect()
    gc.freeze()
