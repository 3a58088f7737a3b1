"""The production stack itself: what the other stack tests stand on is what production runs."""

import re

from tests.stack.harness import ProductionStack


def test_it_serves_with_production_settings_over_https(stack: ProductionStack):
    answer = stack.client().get(stack.url("/accounts/login/"), timeout=30)

    assert answer.status_code == 200
    assert "Strict-Transport-Security" in answer.headers
    assert "Content-Security-Policy" in answer.headers
    # DEBUG off: an unknown address is the trial's own 404 page, not Django's technical one.
    missing = stack.client().get(stack.url("/no-such-page/"), timeout=30)
    assert missing.status_code == 404
    assert "Using the URLconf" not in missing.text


def test_whitenoise_serves_the_collected_static_files_with_hashed_names(stack: ProductionStack):
    page = stack.client().get(stack.url("/accounts/login/"), timeout=30).text
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page)
    assert stylesheets, "the login page links no stylesheet"
    for path in stylesheets:
        assert re.search(r"\.[0-9a-f]{12}\.css$", path), f"{path} is not a hashed (manifest) name"
        answer = stack.client().get(stack.url(path), timeout=30)
        assert answer.status_code == 200
        assert "max-age=315360000" in answer.headers.get("Cache-Control", "")


def test_plain_http_is_not_served(stack: ProductionStack):
    import requests

    try:
        requests.get(f"http://127.0.0.1:{stack.port}/healthz", timeout=10)
    except requests.RequestException:
        return
    raise AssertionError("Gunicorn answered plain HTTP")


def test_a_worker_and_beat_run_the_scheduled_jobs(stack: ProductionStack):
    # Beat sends the message sweep every MESSAGE_SWEEP_SECONDS; the worker runs it.
    from tests.stack.harness import wait_until

    wait_until(lambda: "notifications.tasks.deliver_due" in stack.worker.output(), what="the worker to run the sweep")
    assert "Sending due task deliver-messages" in stack.beat.output()


def test_each_demo_user_signs_in(stack: ProductionStack):
    assert stack.web is not None
    # Only this test's requests: the fault tests before it leave their expected 503s in the same log.
    web_log_start = len(stack.web.output())
    for username in stack.passwords:
        session = stack.login(username)
        assert session.get(stack.url("/"), timeout=30).status_code == 200
    assert stack.server_errors(since=web_log_start) == []
