"""PostgreSQL failing under the production stack: connections terminated in the middle of randomisations, contact
logging and assignments, and PostgreSQL stopped (cleanly, and as a crash) and started again.

What must hold, whatever the moment the fault lands: every family allocated once or not at all, the list's used
positions gapless with its counter equal to them, every partner's count equal to their assignments and within
capacity, no contact saved twice; a request that lost its connection gets the 503 page (or problem) that says
nothing was saved, never a 500; and the app recovers by itself, without restarting Gunicorn or the worker.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from tests.stack.harness import ProductionStack, access_status, wait_until

INTERRUPTED = "The database connection was interrupted. Nothing was saved; please try again."
# Either 503 says what became of the change: nothing saved, or (lost after a service committed) saved.
INTERRUPTED_EITHER = "The database connection was interrupted"
# Bounds of the race: each request is retried after a 503 at most this often, and the fault runs at most this long.
RETRIES = 20
FAULT_WINDOW_SECONDS = 60
# A partner's caseload limit (visits.PartnerProfile.capacity's default).
CAPACITY = 5

# Made in the stack by the apps' own factories (through their services, as the pages do), printed as JSON.
SETUP = """
import json, secrets
from django.utils import timezone
from randomization.lists import allocation_list_extend
from randomization.models import AllocationList
from randomization.tests.factories import ready_to_randomise
from trial.models import Site
from django.contrib.auth import get_user_model
from api.tokens import token_create
from visits.tests.factories import assigned_family, partner, randomised_family

User = get_user_model()
oei = Site.objects.get(code="OEI")
researcher = User.objects.get(username="researcher")
allocation_list = AllocationList.objects.get(site=oei)
if allocation_list.remaining < 60:
    allocation_list_extend(allocation_list=allocation_list, additional=100, reason="Fault tests",
                           extended_by=User.objects.get(username="datamanager"))
tag = secrets.token_hex(3)
fiona = partner(oei, f"fiona-{tag}", capacity=%(capacity)d)
password = secrets.token_urlsafe(12)
fiona.user.set_password(password)
fiona.user.save()
contacted = assigned_family(oei, researcher=researcher, to=fiona)
to_assign = [randomised_family(oei, researcher=researcher).study_id for _ in range(%(to_assign)d)]
to_randomise = [ready_to_randomise(oei, by=researcher).study_id for _ in range(%(to_randomise)d)]
keys = [token_create(user=researcher, name=f"fault test {tag} {i}", scopes=["read", "randomise"], days=1).key
        for i in range(3)]
print(json.dumps({"keys": keys,
    "partner": fiona.pk, "username": fiona.user.username, "password": password, "contacted": contacted.study_id,
    "to_assign": to_assign, "to_randomise": to_randomise, "today": timezone.localdate().isoformat(),
}))
"""


@dataclass
class Outcomes:
    """Every answer of the race, by what was asked."""

    statuses: Counter = field(default_factory=Counter)
    interrupted_bodies_ok: bool = True
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, answer: requests.Response) -> None:
        with self.lock:
            self.statuses[answer.status_code] += 1
            if answer.status_code == 503 and INTERRUPTED_EITHER not in answer.text:
                self.interrupted_bodies_ok = False
                self.errors.append(f"{what}: a 503 without the message: {answer.text[:300]}")
            if answer.status_code >= 500 and answer.status_code != 503:
                self.errors.append(f"{what}: {answer.status_code} {answer.text[:300]}")


def _csrf(session: requests.Session, stack: ProductionStack, path: str) -> str:
    """The CSRF token of a form page, fetched until the page answers (it may get the 503 itself)."""
    for _attempt in range(RETRIES):
        page = session.get(stack.url(path), timeout=60)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if token:
            return token.group(1)
    raise AssertionError(f"{path} never showed its form")


def _post_until_answered(
    session: requests.Session, stack: ProductionStack, path: str, data: dict, outcomes: Outcomes, **kwargs
) -> requests.Response:
    """POST (the same form: the same token) until the answer is not the 503: what a user does after the 503 page."""
    for _attempt in range(RETRIES):
        answer = session.post(stack.url(path), timeout=60, allow_redirects=False, **kwargs, data=data)
        outcomes.record(path, answer)
        if answer.status_code != 503:
            return answer
    return answer


def _logged_errors(stack: ProductionStack, since: int) -> list[str]:
    """The web log's errors other than the 503s (each with its traceback): what a failure of the race needs."""
    return [
        f"{record.get('message')}\n{record.get('exc_info', '')}"
        for record in stack.web_log_records(since)
        if record.get("level") == "ERROR" and not str(record.get("message", "")).startswith("Service Unavailable")
    ]


def _setup(stack: ProductionStack, *, to_assign: int, to_randomise: int) -> dict:
    code = SETUP % {"capacity": CAPACITY, "to_assign": to_assign, "to_randomise": to_randomise}
    output = stack.manage("shell", "-c", code).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_terminated_connections_keep_allocations_lists_caseloads_and_contacts_true(stack: ProductionStack):
    web, postgres = stack.web, stack.postgres
    assert web is not None and postgres is not None
    made = _setup(stack, to_assign=7, to_randomise=12)
    web_log_start = len(web.output())
    in_flight = threading.Event()
    done = threading.Event()
    outcomes = Outcomes()
    terminated: list[int] = []

    def randomiser(seed: int) -> None:
        # Three clients randomise the same families, each in its own order: the same family at once, often.
        client = stack.client()
        # A token each, as three scripts would have: the write throttle counts per token.
        client.headers.update({"Authorization": f"Bearer {made['keys'][seed]}", "Accept-Language": "en"})
        families = list(made["to_randomise"])
        random.Random(seed).shuffle(families)
        for study_id in families:
            in_flight.set()
            body = {"study_id": study_id, "site": "OEI"}
            for _attempt in range(RETRIES):
                answer = client.post(stack.url("/api/v1/randomisations/"), json=body, timeout=60)
                outcomes.record("randomise", answer)
                if answer.status_code != 503:
                    if answer.status_code not in (200, 201):
                        outcomes.errors.append(f"randomise {study_id}: {answer.status_code} {answer.text[:300]}")
                    break

    # Signed in before the fault starts (a sign-in it interrupts is the 503 too, but then there is no session).
    researcher, fiona = stack.login("researcher"), stack.login(made["username"], made["password"])
    watcher = stack.login("researcher")

    def assigner() -> None:
        # Seven families for a partner with room for four: at most four are assigned, whatever was interrupted.
        session = researcher
        for study_id in made["to_assign"]:
            path = f"/families/{study_id}/family-partner/"
            form = {"partner": str(made["partner"]), "started_on": made["today"], "shown": ""}
            form["csrfmiddlewaretoken"] = _csrf(session, stack, path)
            _post_until_answered(session, stack, path, form, outcomes, headers={"Referer": stack.url(path)})

    logged: list[str] = []
    submitted: list[str] = []
    last_answer: dict[str, int] = {}

    def contact_logger() -> None:
        session = fiona
        path = f"/partner/families/{made['contacted']}/contacts/new/"
        for _contact in range(8):
            token = str(uuid.uuid4())
            submitted.append(token)
            form = {
                "csrfmiddlewaretoken": _csrf(session, stack, path),
                "token": token,
                "contact_date": made["today"],
                "duration_quarters": "1",
                "kind": "phone_video",
                "elements": ["parental_guidance"],
                "notes": "",
            }
            answer = _post_until_answered(session, stack, path, form, outcomes, headers={"Referer": stack.url(path)})
            last_answer[token] = answer.status_code
            if answer.status_code == 302:
                logged.append(token)

    def fault() -> None:
        in_flight.wait(timeout=FAULT_WINDOW_SECONDS)
        while not done.is_set():
            terminated.append(postgres.terminate("trial-web"))
            # Pacing, not synchronisation: whatever this lands on, the invariants below must hold.
            # Often enough to land in requests, seldom enough that a page of many queries can still finish.
            done.wait(random.uniform(0.05, 0.4))

    def reporting(target, *args) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception as error:  # a client that fails is a finding, not a thread that dies unseen
                outcomes.errors.append(f"{target.__name__}: {error!r}")

        return threading.Thread(target=run)

    users = [reporting(randomiser, seed) for seed in range(3)]
    users += [reporting(assigner), reporting(contact_logger)]
    faulter = threading.Thread(target=fault)
    faulter.start()
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(timeout=FAULT_WINDOW_SECONDS * 3)

    # If no request was hit yet, keep the fault and the requests going a little (bounded), so that it lands.
    def interrupted() -> bool:
        if outcomes.statuses[503] == 0:
            outcomes.record("/families/", watcher.get(stack.url("/families/"), timeout=60))
        return outcomes.statuses[503] > 0

    wait_until(
        interrupted,
        timeout=FAULT_WINDOW_SECONDS,
        what="a request to be interrupted by a terminated connection",
    )
    done.set()
    faulter.join(timeout=30)

    assert not any(thread.is_alive() for thread in users), "a client never finished"
    assert outcomes.errors == [], "\n".join([*outcomes.errors, *_logged_errors(stack, web_log_start)])
    assert sum(terminated) > 0, "the fault never terminated a connection"
    assert outcomes.statuses[503] > 0, "no request was interrupted: the fault did not land"
    assert outcomes.interrupted_bodies_ok

    # Every family allocated once or not at all; here each was randomised in the end (after the 503, again).
    randomised = stack.sql(
        "SELECT f.study_id, count(a.id) FROM families_family f LEFT JOIN randomization_allocation a "
        "ON a.family_id = f.id WHERE f.study_id = ANY(%s) GROUP BY f.study_id",
        (made["to_randomise"],),
    )
    assert sorted(randomised) == sorted((study_id, 1) for study_id in made["to_randomise"])
    assert stack.sql("SELECT family_id FROM randomization_allocation GROUP BY family_id HAVING count(*) > 1") == []
    # The list's used positions: 1..n, each once, and its own counter n; a family randomised is a family allocated.
    for list_id, used in stack.sql("SELECT id, used FROM randomization_allocationlist"):
        positions = [
            row[0]
            for row in stack.sql(
                "SELECT a.position FROM randomization_allocation a JOIN randomization_allocationentry e "
                "ON a.entry_id = e.id WHERE e.allocation_list_id = %s ORDER BY position",
                (list_id,),
            )
        ]
        assert positions == list(range(1, used + 1)), f"list {list_id}: positions {positions}, counter {used}"
    assert (
        stack.sql(
            "SELECT f.study_id FROM families_family f LEFT JOIN randomization_allocation a ON a.family_id = f.id "
            "WHERE (f.status = 'randomised') <> (a.id IS NOT NULL) AND f.status IN ('consented', 'randomised')"
        )
        == []
    )
    # Caseloads: the count kept equals the assignments not ended, never above capacity; one partner per family.
    for pk, active, capacity, assignments in stack.sql(
        "SELECT p.id, p.active_families, p.capacity, (SELECT count(*) FROM visits_assignment a "
        "WHERE a.partner_id = p.id AND a.ended_on IS NULL) FROM visits_partnerprofile p"
    ):
        assert active == assignments <= capacity, f"partner {pk}: {active} counted, {assignments} of {capacity}"
    assert (
        stack.sql(
            "SELECT family_id FROM visits_assignment WHERE ended_on IS NULL GROUP BY family_id HAVING count(*) > 1"
        )
        == []
    )
    (fiona_active,) = stack.sql("SELECT active_families FROM visits_partnerprofile WHERE id = %s", (made["partner"],))
    assert fiona_active == (CAPACITY,), "the partner with room did not get families up to her capacity"
    # Contacts: each submission (its form's token) saved at most once, every one the user was told was saved is
    # there, and nothing the test did not submit. (A submission saved while its last answer was a 503 is allowed:
    # the 503 after a commit says the change was saved.)
    contacts = [
        token
        for (token,) in stack.sql(
            "SELECT c.submission_token::text FROM visits_contact c JOIN families_family f ON c.family_id = f.id "
            "WHERE f.study_id = %s",
            (made["contacted"],),
        )
    ]
    assert len(contacts) == len(set(contacts))
    assert set(logged) <= set(contacts) <= set(submitted), (logged, contacts, last_answer)
    assert len(logged) >= 6, f"only {len(logged)} of 8 contacts were answered as saved: {last_answer}"

    # With no fault running, every Gunicorn worker's next request answers (more requests than workers).
    session = stack.login("researcher")
    for _request in range(stack.web_workers * 4):
        assert session.get(stack.url("/families/"), timeout=30).status_code == 200
    new_errors = stack.server_errors(since=web_log_start)
    assert new_errors, "the access log shows no interrupted request"
    assert not [line for line in new_errors if access_status(line) != 503], "a 5xx other than 503"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_app_recovers_by_itself_when_postgresql_restarts(stack: ProductionStack, mode: str):
    web, worker, postgres = stack.web, stack.worker, stack.postgres
    assert web is not None and worker is not None and postgres is not None
    session = stack.login("researcher")
    assert session.get(stack.url("/families/"), timeout=30).status_code == 200
    worker_log_start = len(worker.output())
    web_log_start = len(web.output())

    web_pid, worker_pid = web.pid, worker.pid
    postgres.stop(mode)
    try:
        down = wait_until(
            # A list: a Response with an error status is false.
            lambda: [answer for answer in [stack.healthz()] if answer.status_code == 503],
            timeout=30,
            what="/healthz to say 503",
        )
        assert down[0].json()["database"] != "ok"
        assert down[0].json()["broker"] == "ok"
        page = session.get(stack.url("/families/"), timeout=30)
        assert page.status_code == 503
        assert INTERRUPTED in page.text
        # The schema accepts the session: reading it needs the database, so the API's answer is the 503 problem.
        problem = session.get(stack.url("/api/schema/"), timeout=30)
        assert problem.status_code == 503
        assert problem.headers["Content-Type"] == "application/problem+json"
        assert problem.json()["detail"] == INTERRUPTED
    finally:
        postgres.start()
    worker_log_restarted = len(worker.output())

    # Neither Gunicorn nor the worker was restarted: the same processes answer again.
    wait_until(stack.healthz_answers, timeout=60, what="/healthz to say 200 again")
    assert session.get(stack.url("/families/"), timeout=30).status_code == 200
    assert (web.pid, worker.pid) == (web_pid, worker_pid)
    assert web.alive() and worker.alive()
    # The worker runs the scheduled message sweep again, successfully, after the restart.
    wait_until(
        lambda: re.search(
            r"Task notifications\.tasks\.deliver_due\[[^\]]+\] succeeded", worker.output()[worker_log_restarted:]
        ),
        timeout=60,
        what="the worker to run the sweep again",
    )
    assert worker_log_start < len(worker.output())
    errors = stack.server_errors(since=web_log_start)
    assert errors and all(access_status(line) == 503 for line in errors), errors
