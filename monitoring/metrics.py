"""The metrics /metrics gives, in Prometheus' text format.

Requests and latencies are counted by the web process that answers them. Gunicorn runs several workers: with
PROMETHEUS_MULTIPROC_DIR set (trial/gunicorn.conf.py sets it) each writes its counts to files there, and a scrape
adds up every worker's, so a scrape answered by any worker gives the whole server's. Without it (tests, `make run`)
the counts are this process's.

The rest is read at scrape time with a few cheap queries: the Celery queue's length in Redis, the messages of the
outbox by status, and each allocation list's remaining entries. Labels are views, methods, statuses, site codes and
list numbers: never a path (paths hold study IDs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db.models import Count
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from notifications.models import Message, MessageStatus
from randomization.models import AllocationList

# The counters of this process; in multiprocess mode their values live in PROMETHEUS_MULTIPROC_DIR's files.
_requests_registry = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "trial_http_requests",
    "Requests answered, by view name, method and status.",
    ["view", "method", "status"],
    registry=_requests_registry,
)
LATENCY = Histogram(
    "trial_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view name.",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=_requests_registry,
)

# Methods outside these are counted as "other", so that a client cannot invent labels without end.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def request_observed(*, view: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(view=view, method=method if method in METHODS else "other", status=str(status)).inc()
    LATENCY.labels(view=view).observe(seconds)


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return _requests_registry.collect()


def celery_queue_length() -> int | None:
    """Tasks waiting in the default queue: LLEN of its Redis lists (kombu keeps one per priority step), or None when
    the broker is not Redis or does not answer."""
    if not settings.REDIS_URL:
        return None
    import redis

    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    # kombu's Redis transport: priority 0 is the queue's own key, the others are "<queue>\x06\x16<priority>".
    keys = [queue] + [f"{queue}\x06\x16{priority}" for priority in (3, 6, 9)]
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
            lengths = pipe.execute()
        client.close()
    except redis.RedisError:
        return None
    return sum(int(length) for length in lengths)


class TrialState(Collector):
    """Gauges read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        length = celery_queue_length()
        broker_up = GaugeMetricFamily("trial_celery_broker_up", "1 when the broker (Redis) answered the scrape.")
        broker_up.add_metric([], 0 if length is None else 1)
        yield broker_up
        if length is not None:
            yield GaugeMetricFamily(
                "trial_celery_queue_length", "Tasks waiting in Celery's default queue.", value=length
            )

        messages = GaugeMetricFamily(
            "trial_messages", "Messages of the outbox by status (pending, sending, failed, ...).", labels=["status"]
        )
        counts = dict(Message.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in MessageStatus.values:
            messages.add_metric([status], counts.get(status, 0))
        yield messages

        remaining = GaugeMetricFamily(
            "trial_allocation_list_remaining", "Entries not yet used, per allocation list.", labels=["site", "list"]
        )
        length_metric = GaugeMetricFamily(
            "trial_allocation_list_length", "Entries of each allocation list.", labels=["site", "list"]
        )
        for list_id, site, size, used in AllocationList.objects.values_list("id", "site__code", "length", "used"):
            remaining.add_metric([site, str(list_id)], size - used)
            length_metric.add_metric([site, str(list_id)], size)
        yield remaining
        yield length_metric


def exposition() -> bytes:
    """Every metric, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(TrialState())
    return generate_latest(registry)
