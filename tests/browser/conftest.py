"""Browser fixtures: Playwright's sync API driving Debian's Chromium against pytest-django's live server.

Playwright's own downloaded browsers are never used (no `playwright install`): the tests drive the
Chromium the machine has, at $CHROMIUM or /usr/bin/chromium, and the network stays closed.
"""

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest import require
from trial.tests.factories import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
NORWEGIAN_BROWSER = "nb-NO"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test, so that the page fixture knows whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    return RESULTS_DIR


# One browser for all the browser tests, which live in this package. Not for the whole session: while
# Playwright runs, an asyncio event loop is running in the main thread, and it must be gone (with the
# setting below) before pytest goes on to other tests, which run Django code without that exemption
# or start subprocesses (`manage.py check --deploy` warns about the setting).
@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    require(
        os.access(CHROMIUM, os.X_OK),
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)",
    )
    with launched_chromium() as browser:
        yield browser


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright (the browser tests' and the production stack's journeys')."""
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps its event loop running in the test's thread, so Django sees a
        # running loop and refuses every ORM call the test makes (SynchronousOnlyOperation), although
        # those calls are plain synchronous code that the loop never interleaves with. The live
        # server answers requests in its own threads, where this does not apply.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def open_page(chromium, live_server, results_dir, request) -> Iterator[Callable[..., Page]]:
    """Opens a page in a fresh browser (own cookies), Norwegian unless a test asks for another locale.

    On failure every page the test opened is kept as a screenshot in test-results/. A JavaScript error
    or a failed request (a missing stylesheet, a server error) fails the test: a user would notice it.
    """
    contexts = []
    problems: list[str] = []

    def open_page(*, locale: str = NORWEGIAN_BROWSER, viewport: dict | None = None, **options) -> Page:
        if viewport is not None:
            options["viewport"] = viewport
        context = chromium.new_context(base_url=live_server.url, locale=locale, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"JavaScript error on {page.url}: {error}"))
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and problems.append(f"{response.status} for {response.request.method} {response.url}")
            ),
        )
        return page

    yield open_page

    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        pages = [page for context in contexts for page in context.pages]
        for number, page in enumerate(pages, start=1):
            page.screenshot(path=results_dir / f"failed-{name}-{number}.png", full_page=True)
    for context in contexts:
        context.close()
    if call is not None and call.passed and problems:
        pytest.fail("The browser saw problems:\n" + "\n".join(problems))


@pytest.fixture
def page(open_page) -> Page:
    """A page in a Norwegian browser with the default (desktop) viewport."""
    return open_page()


@pytest.fixture
def log_in() -> Callable[[Page, object], None]:
    """Logs a user in through the real login form, as a person would."""

    def log_in(page: Page, user) -> None:
        page.goto("/")
        page.locator("#id_username").fill(user.get_username())
        page.locator("#id_password").fill(PASSWORD)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert "/accounts/login/" not in page.url, f"{user} could not log in"

    return log_in
