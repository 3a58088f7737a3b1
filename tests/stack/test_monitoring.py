"""Monitoring on the production stack: /metrics adds up every Gunicorn worker's counts and reads the database, and
the logs of every process are JSON lines that carry request ids and never a family's identifiers."""

import uuid
from datetime import date, timedelta

from prometheus_client.parser import text_string_to_metric_families

from families.tests.test_validators import national_id_number
from tests.stack.harness import ProductionStack, json_line, wait_until


def scrape(stack: ProductionStack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = stack.client().get(
        stack.url("/metrics"), headers={"Authorization": f"Bearer {stack.metrics_token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text[:500]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def message_counts(stack: ProductionStack) -> dict[str, int]:
    return dict(stack.sql("SELECT status, count(*) FROM notifications_message GROUP BY status"))


def scrape_between_equal_counts(stack: ProductionStack):
    before = message_counts(stack)
    samples = scrape(stack)
    return (samples, before) if message_counts(stack) == before else None


def test_metrics_are_refused_without_the_token(stack: ProductionStack):
    assert stack.client().get(stack.url("/metrics"), timeout=30).status_code == 401
    wrong = stack.client().get(stack.url("/metrics"), headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert wrong.status_code == 401
    assert "trial_" not in wrong.text


def test_metrics_count_the_requests_of_every_web_worker_and_read_the_database(stack: ProductionStack):
    assert stack.web_workers > 1
    key = ("trial_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "login")))
    before = scrape(stack).get(key, 0)

    for _ in range(8):
        assert stack.client().get(stack.url("/accounts/login/"), timeout=30).status_code == 200

    # Each scrape is answered by whichever worker takes it, and each gives the whole server's count.
    scrapes = [scrape(stack) for _ in range(4)]
    assert [samples[key] - before for samples in scrapes] == [8] * 4
    lists = stack.sql(
        "SELECT s.code, l.id, l.length - l.used FROM randomization_allocationlist l"
        " JOIN trial_site s ON s.id = l.site_id"
    )
    assert lists, "the demo has allocation lists"
    for site, list_id, remaining in lists:
        assert scrapes[-1][("trial_allocation_list_remaining", (("list", str(list_id)), ("site", site)))] == remaining
    # The worker sends messages meanwhile: compare a scrape with the table as it was both before and after it.
    latest, messages = wait_until(lambda: scrape_between_equal_counts(stack), what="a scrape while no message moved")
    for status in ("pending", "sending", "sent", "failed", "cancelled"):
        assert latest[("trial_messages", (("status", status),))] == messages.get(status, 0)
    assert latest[("trial_celery_broker_up", ())] == 1
    assert latest[("trial_celery_queue_length", ())] >= 0


def test_the_logs_carry_request_ids_and_never_a_familys_identifiers(stack: ProductionStack):
    identifiers = {
        "contact_name": "Ingeborg Quistgaard-Zwilgmeyer",
        "national_id_number": national_id_number(date(1987, 6, 23), 417),
        "phone": "+47 934 71 286",
        "address": "Kvernhusbakken 719, 3320 Vestfossen",
        "other_members": "Torvald Quistgaard-Zwilgmeyer",
    }
    key = stack.manage("create_api_token", "researcher", "--name", "log test", "--scope", "write").stdout.strip()
    api = stack.client()
    api.headers["Authorization"] = f"Bearer {key}"
    site = api.get(stack.url("/api/v1/sites/"), timeout=30).json()[0]["code"]
    request_id = uuid.uuid4().hex
    registration = {
        "site": site,
        "referral_date": (date.today() - timedelta(days=2)).isoformat(),
        "referral_source": "health_service",
        "parent_birth_years": [1987],
        "child_birth_dates": [(date.today() - timedelta(days=4 * 365)).isoformat()],
        "identifiers": identifiers,
    }

    answer = api.post(
        stack.url("/api/v1/families/"), json=registration, headers={"X-Request-ID": request_id}, timeout=30
    )
    assert answer.status_code == 201, answer.text[:500]
    assert answer.headers["X-Request-ID"] == request_id
    study_id = answer.json()["study_id"]
    # The family's page shows the identifiers (decrypted); a search names one in the query string.
    researcher = stack.login("researcher")
    page = researcher.get(stack.url(f"/families/{study_id}/"), timeout=30)
    assert identifiers["contact_name"] in page.text
    researcher.get(stack.url("/families/"), params={"q": identifiers["contact_name"]}, timeout=30)

    access = [
        record
        for line in stack.web.output().splitlines()
        if (record := json_line(line)) is not None and record.get("logger") == "gunicorn.access"
    ]
    registered = [record for record in access if record.get("request_id") == request_id]
    assert [(record["method"], record["path"], record["status"]) for record in registered] == [
        ("POST", "/api/v1/families/", 201)
    ]
    assert any(record["path"] == f"/families/{study_id}/" and record["request_id"] for record in access)
    everything = "\n".join(process.output() for process in (stack.web, stack.worker, stack.beat))
    for value in [*identifiers.values(), "Quistgaard", "93471286", identifiers["national_id_number"]]:
        assert value not in everything, f"a log holds {value!r}"
