"""/metrics: Prometheus' text format, only with the bearer token, counting requests by view and reading the outbox,
the queue and the allocation lists from the database at scrape time."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conftest import require
from notifications.models import Message, MessageStatus
from notifications.tests.factories import send_message
from randomization.tests.factories import allocation_list_for, randomised_family

TOKEN = "a-test-token-of-the-scraper"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_it_does_not_exist_without_a_token_set(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN])
def test_it_refuses_a_scrape_without_the_token(client, header):
    headers = {"HTTP_AUTHORIZATION": header} if header is not None else {}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"trial_" not in response.content
    assert "no-store" in response["Cache-Control"]


def test_it_is_never_cached(client, db):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert "no-store" in response["Cache-Control"]


def test_it_counts_a_request_by_view_method_and_status_never_by_path(client, db):
    key = ("trial_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "login")))
    before = scrape(client).get(key, 0)

    assert client.get("/accounts/login/").status_code == 200
    client.get("/families/OEI-987/")  # a path with a study ID: signed out, a redirect to the login page

    after = scrape(client)
    assert after[key] == before + 1
    assert after[("trial_http_request_duration_seconds_count", (("view", "login"),))] >= 1
    assert not any("OEI-987" in value for _, labels in after for _, value in labels)


def test_a_strange_method_is_counted_as_other(client, db):
    client.generic("BREW", "/accounts/login/")

    assert any(name == "trial_http_requests_total" and ("method", "other") in labels for name, labels in scrape(client))


def test_the_gauges_are_the_databases_numbers(client, oei, lar, alice, dina):
    oei_list = allocation_list_for(oei, by=dina, length=40)
    lar_list = allocation_list_for(lar, by=dina, length=60)
    randomised_family(oei, researcher=alice)
    randomised_family(oei, researcher=alice)
    Message.objects.all().delete()  # what randomising queued, so that the counts below are the test's own
    send_message(alice, study_id="OEI-001")
    send_message(alice, study_id="OEI-002")
    send_message(alice, study_id="OEI-003", status=MessageStatus.FAILED)

    samples = scrape(client)

    # A list's length is rounded up to whole blocks: the true numbers are the rows'.
    oei_list.refresh_from_db()
    lar_list.refresh_from_db()
    assert oei_list.used == 2
    oei_labels = (("list", str(oei_list.pk)), ("site", "OEI"))
    assert samples[("trial_allocation_list_remaining", oei_labels)] == oei_list.length - 2
    assert samples[("trial_allocation_list_length", oei_labels)] == oei_list.length
    assert samples[("trial_allocation_list_remaining", (("list", str(lar_list.pk)), ("site", "LAR")))] == (
        lar_list.length
    )
    assert samples[("trial_messages", (("status", "pending"),))] == 2
    assert samples[("trial_messages", (("status", "failed"),))] == 1
    assert samples[("trial_messages", (("status", "sent"),))] == 0


def test_the_queue_length_is_redis_llen_of_the_celery_queue(client, db, settings):
    require(bool(settings.REDIS_URL), "needs Redis (REDIS_URL) as the broker")
    import redis

    settings.CELERY_TASK_DEFAULT_QUEUE = "trial-metrics-test-queue"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("trial-metrics-test-queue")
    broker.rpush("trial-metrics-test-queue", "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        broker.delete("trial-metrics-test-queue")

    assert samples[("trial_celery_queue_length", ())] == 3
    assert samples[("trial_celery_broker_up", ())] == 1
