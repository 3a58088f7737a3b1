"""`make bench`: the API's randomise and family-list calls beside the same work through the pages.

PostgreSQL only (randomisation takes row locks). A live server (Django's LiveServerThread: a threaded WSGI server in
this process, as the browser tests use) answers real HTTP clients, one `requests` session per client thread, at 1,
4 and 16 concurrent clients:
- randomise: `POST /api/v1/randomisations/` (a token per client) against the randomise page's confirmation `POST`
  (a signed-in session per client), each on a fresh site with its own list and API_ALLOCATIONS consented families
  with their baseline; after each run the site's allocations are checked as bench/run.py checks its own (positions
  1..N without gaps or repeats, one allocation per family, the list's `used`, the list's verification);
- family list: `GET /api/v1/families/?page_size=25` against the family list page (25 families a page), for a
  researcher of every site of the filled trial.
Calls per second (wall clock, all clients together), median and p95 latency. Throttling is raised out of the way.
Nothing is asserted but the allocations' anomalies, which are printed.
"""

import os
import re
import statistics
import threading
import time
from collections import deque
from functools import partial

API_ALLOCATIONS = int(os.environ.get("BENCH_API_ALLOCATIONS", "192"))
API_REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "192"))
CLIENTS = (1, 4, 16)
LIST_PAGE_SIZE = 25  # the family list page's own page size, so both answer the same families


class LiveServer:
    """Django's threaded live server on a free port, for the length of a `with`."""

    def __enter__(self) -> str:
        from django.conf import settings
        from django.test.testcases import LiveServerThread, _StaticFilesHandler

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
        self.thread = LiveServerThread("127.0.0.1", _StaticFilesHandler)
        self.thread.daemon = True
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error
        return f"http://127.0.0.1:{self.thread.port}"

    def __exit__(self, *exc) -> None:
        self.thread.terminate()
        self.thread.join()


def _sessions(count: int, make):
    """One HTTP session per client thread, made up front (signing in is not what is measured)."""
    return [make() for _ in range(count)]


def _run(clients: int, calls_per_client: int, call) -> tuple[list[float], float]:
    """`call(client_index)` from `clients` threads released together: every call's latency and the wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    started: list[float] = []
    barrier = threading.Barrier(clients, action=lambda: started.append(time.perf_counter()))

    def client(index: int) -> None:
        barrier.wait()
        mine = []
        for _ in range(calls_per_client):
            t0 = time.perf_counter()
            call(index)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started[0]


def _row(label: str, latencies: list[float], elapsed: float) -> tuple:
    from bench.run import percentile

    return (
        label,
        len(latencies),
        f"{len(latencies) / elapsed:.0f}/s",
        statistics.median(latencies) * 1000,
        percentile(latencies, 0.95) * 1000,
        "",
    )


def benchmark_api(list_sites: list, data_manager) -> tuple[list[tuple], list[str]]:
    """The table's rows and the allocation checks' lines."""
    import requests
    from django.conf import settings

    from api.tokens import token_create
    from bench.run import randomisation_anomalies
    from families.models import Family
    from randomization import lists
    from randomization.tests.factories import ready_to_randomise
    from trial.models import Site
    from trial.roles import Role
    from trial.tests.factories import UserFactory

    settings.API_RATE = settings.API_WRITE_RATE = "1000000/min"
    per_client = {clients: max(1, API_ALLOCATIONS // clients) for clients in CLIENTS}
    runs = [(way, clients) for way in ("API", "page") for clients in CLIENTS]
    sites = {
        run: Site.objects.create(code=f"BP{chr(ord('A') + i)}", name=f"Bench API {i + 1}", expected_recruitment=1)
        for i, run in enumerate(runs)
    }
    researcher = UserFactory(username="bench-api", roles=[Role.RESEARCHER], sites=[*list_sites, *sites.values()])
    started = time.perf_counter()
    for (_way, clients), site in sites.items():
        for _ in range(per_client[clients] * clients):
            ready_to_randomise(site, by=researcher)
        lists.allocation_list_generate(
            site=site, generated_by=data_manager, length=min(lists.MAX_LIST_LENGTH, 2 * per_client[clients] * clients)
        )
    fill_seconds = time.perf_counter() - started

    def api_session() -> requests.Session:
        session = requests.Session()
        key = token_create(user=researcher, name=f"bench {time.perf_counter_ns()}", scopes=["read", "randomise"]).key
        session.headers["Authorization"] = f"Bearer {key}"
        return session

    def page_session(base: str, study_id: str) -> tuple[requests.Session, str]:
        """A signed-in session and its CSRF token (from the randomise page's form, as a browser gets it)."""
        session = _sign_in(researcher)
        form = session.get(f"{base}/families/{study_id}/randomise/")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert match, f"no CSRF token on the randomise page ({form.status_code})"
        return session, match.group(1)

    rows, lines = [], [f"API bench: {len(sites)} sites of consented families filled in {fill_seconds:.0f} s"]
    with LiveServer() as base:
        for (way, clients), site in sites.items():
            families = deque(Family.objects.filter(site=site, status="consented").order_by("number"))
            failures: list[str] = []
            if way == "API":
                call = partial(_randomise_by_api, base, _sessions(clients, api_session), families, site, failures)
            else:
                pages = [page_session(base, families[0].study_id) for _ in range(clients)]
                call = partial(_randomise_by_page, base, pages, families, site, failures)
            latencies, elapsed = _run(clients, per_client[clients], call)
            rows.append(_row(f"randomise, {way}, {clients} concurrent", latencies, elapsed))
            anomalies = randomisation_anomalies(site, per_client[clients] * clients, failures, data_manager)
            lines.append(
                f"{site.code} (randomise, {way}, {clients} concurrent): {len(latencies)} randomised, "
                f"{len(anomalies)} anomalies" + "".join(f"\n  - {line}" for line in anomalies[:10])
            )

        for way in ("API", "page"):
            for clients in CLIENTS:
                if way == "API":
                    sessions = _sessions(clients, api_session)
                    url = f"{base}/api/v1/families/?page_size={LIST_PAGE_SIZE}"
                else:
                    sessions = _sessions(clients, lambda: _sign_in(researcher))
                    url = f"{base}/families/"
                errors: list[int] = []

                def read(index: int, sessions=sessions, url=url, errors=errors) -> None:
                    response = sessions[index].get(url)
                    if response.status_code != 200:
                        errors.append(response.status_code)

                latencies, elapsed = _run(clients, max(1, API_REQUESTS // clients), read)
                rows.append(_row(f"family list, {way}, {clients} concurrent", latencies, elapsed))
                if errors:
                    lines.append(f"family list, {way}, {clients} concurrent: {len(errors)} errors {set(errors)}")
    return rows, lines


def _randomise_by_api(base: str, sessions: list, families: deque, site, failures: list[str], index: int) -> None:
    study_id = families.popleft().study_id
    response = sessions[index].post(f"{base}/api/v1/randomisations/", json={"study_id": study_id, "site": site.code})
    if response.status_code != 201:
        failures.append(f"{study_id}: {response.status_code} {response.text[:200]}")


def _randomise_by_page(base: str, pages: list, families: deque, site, failures: list[str], index: int) -> None:
    """The randomise page's confirmation, as a browser posts it (the receipt is its redirect, not followed)."""
    study_id = families.popleft().study_id
    session, csrf = pages[index]
    url = f"{base}/families/{study_id}/randomise/"
    response = session.post(
        url,
        data={"site": site.code, "confirm": "on", "csrfmiddlewaretoken": csrf},
        headers={"Referer": url},
        allow_redirects=False,
    )
    if response.status_code != 302 or "randomisation-receipt" not in response.headers.get("Location", ""):
        failures.append(f"{study_id}: {response.status_code}")


def _sign_in(user):
    """A `requests` session signed in as `user` (the session cookie Django's test client makes)."""
    import requests
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    return session


if __name__ == "__main__":  # on its own, in a fresh database: python bench/api.py (PostgreSQL)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.standalone import fresh_database

    fresh_database("The API benchmark")
    from bench.run import FAMILIES, print_table
    from families.tests.factories import family_in_state
    from trial.models import Site
    from trial.roles import Role
    from trial.tests.factories import UserFactory

    trial_sites = list(Site.objects.order_by("code"))
    filler = UserFactory(username="bench", roles=[Role.RESEARCHER], sites=trial_sites)
    states = ["consented", "consented", "eligible", "ineligible", "referred", "declined"]
    for i in range(FAMILIES):
        family_in_state(states[i % len(states)], site=trial_sites[(i // len(states)) % len(trial_sites)], by=filler)
    table, notes = benchmark_api(trial_sites, UserFactory(username="bench-data-manager", roles=[Role.DATA_MANAGER]))
    print()
    print(f"{FAMILIES} families at {len(trial_sites)} sites, plus the randomising sites' families")
    print_table(table)
    print()
    print("\n".join(notes))
