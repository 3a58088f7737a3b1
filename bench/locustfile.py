"""The load benchmark's users (bench/load.py runs locust headless with this file against a production stack).

Mixed roles, each signed in through the login form (or holding an API token), each request named by its page:
- researchers: the family list and a search, a family's page, registering a family (form and POST), randomising a
  consented family (the randomise page and its confirmation POST);
- Family Partners on the phone pages: their families, a family's work page, the contact form and logging a contact;
- assessors: the follow-up grid (page 1, a later page, overdue only) and their worklist;
- the PI: the caseload of every site, the feasibility report page and its downloads (PDF, spreadsheet);
- scripts on the API (a token each): the family list, a family, a randomisation.
`BareUser` only asks for /bench/bare (bench/load_urls.py): the ceiling.

bench/load.py passes the stack's data in BENCH_LOAD_DATA (a JSON file of bench/load_seed.py, plus the password, the
certificate and the API tokens) and the think time in BENCH_LOAD_WAIT ("1-3" seconds, or "0" for a saturating run).
A response that is not what the page answers when it works is a failure (a form shown again is one).
"""

import itertools
import json
import os
import random
import re
import uuid
from datetime import date, timedelta
from html.parser import HTMLParser

from locust import HttpUser, between, constant, task

DATA: dict = {}
if os.environ.get("BENCH_LOAD_DATA"):
    with open(os.environ["BENCH_LOAD_DATA"]) as data_file:
        DATA = json.load(data_file)
_low, _, _high = os.environ.get("BENCH_LOAD_WAIT", "1-3").partition("-")
WAIT = constant(float(_low)) if not _high else between(float(_low), float(_high))

# Shared by every user of this (single, gevent) locust process: each ready family is randomised once.
READY = iter(DATA.get("ready", []))
PARTNER_NUMBER = itertools.count()
TOKEN_NUMBER = itertools.count()
WORK_LINK = re.compile(r'href="/partner/families/([A-Z]{3}-\d+)/"')
FAMILY_LINK = re.compile(r'href="/families/([A-Z]{3}-\d+)/"')


class FormFields(HTMLParser):
    """The values a browser would submit from the page's forms as they are: inputs with their values (checked boxes
    only), textareas empty, each select's selected (or first) option."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        name = values.get("name")
        if tag == "input" and name:
            if values.get("type") in ("checkbox", "radio") and "checked" not in values:
                return
            if values.get("type") in ("submit", "button"):
                return
            self.fields[name] = values.get("value", "")
        elif tag == "textarea" and name:
            self.fields[name] = ""
        elif tag == "select" and name:
            self._select, self._first_option = name, True
        elif tag == "option" and self._select:
            if self._first_option or "selected" in values:
                self.fields[self._select] = values.get("value", "")
            self._first_option = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_fields(html: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(html)
    return parser.fields


class TrialUser(HttpUser):
    """A user of the stack over HTTPS with the run's certificate, signed in as `username()`."""

    abstract = True
    wait_time = WAIT

    def on_start(self) -> None:
        self.client.trust_env = False
        self.client.verify = os.environ.get("BENCH_LOAD_CERT", True)
        # Django checks a secure POST's Referer against the site's own origin.
        self.client.headers["Referer"] = f"{self.host}/"
        session = DATA.get("sessions", {}).get(self.username())
        if session:  # signed in by bench/load.py before the clock
            for name, value in session.items():
                self.client.cookies.set(name, value)
        else:
            self.sign_in()

    def sign_in(self) -> None:
        page = self.client.get("/accounts/login/", name="sign in (form)")
        fields = form_fields(page.text)
        fields.update(username=self.username(), password=DATA["password"])
        with self.client.post("/accounts/login/", data=fields, name="sign in", catch_response=True) as answer:
            if "sessionid" not in self.client.cookies:
                answer.failure(f"{self.username()} not signed in ({answer.status_code})")

    def username(self) -> str:
        raise NotImplementedError

    def get(self, path: str, name: str, expect: str = "") -> str:
        """GET a page; a failure unless 200 (and `expect` in it)."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
            elif expect and expect not in response.text:
                response.failure(f"no {expect!r} on the page")
            return response.text

    def post_form(self, path: str, page_html: str, changes: dict, name: str, redirect_to: str) -> None:
        """POST the page's form with `changes`; a failure unless redirected to a URL containing `redirect_to`."""
        fields = form_fields(page_html)
        fields.update(changes)
        with self.client.post(path, data=fields, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 302 or redirect_to not in response.headers.get("Location", ""):
                response.failure(f"{response.status_code}, not redirected to {redirect_to}")


class Researcher(TrialUser):
    weight = 3

    def username(self) -> str:
        return DATA["researcher"]

    @task(3)
    def family_list(self) -> None:
        html = self.get("/families/", "researcher: family list")
        found = FAMILY_LINK.findall(html)
        if found:
            self.get(f"/families/{random.choice(found)}/", "researcher: family page")  # noqa: S311

    @task(1)
    def search(self) -> None:
        self.get(f"/families/?q={DATA['site']}-0&status=consented", "researcher: family search")

    @task(1)
    def register(self) -> None:
        html = self.get("/families/new/", "researcher: register form")
        changes = {
            "site": str(DATA["site_pk"]),
            "referral_date": (date.today() - timedelta(days=2)).isoformat(),
            "referral_source": "health_service",
            "contact_name": "Load Forelder",
            "phone": "91234567",
            "parents-0-birth_year": "1990",
            "children-0-birth_date": "2019-04-01",
        }
        self.post_form("/families/new/", html, changes, "researcher: register (POST)", "/families/")

    @task(1)
    def randomise(self) -> None:
        study_id = next(READY, None)
        if study_id is None:  # every ready family randomised: the list instead
            self.family_list()
            return
        path = f"/families/{study_id}/randomise/"
        html = self.get(path, "researcher: randomise page")
        self.post_form(path, html, {"confirm": "on"}, "researcher: randomise (POST)", "/randomisation-receipt/")


class Partner(TrialUser):
    weight = 4

    def on_start(self) -> None:
        partners = DATA["partners"]
        self.partner = partners[next(PARTNER_NUMBER) % len(partners)]
        super().on_start()
        self.families = WORK_LINK.findall(self.get("/partner/", "partner: my families")) or ["none"]

    def username(self) -> str:
        return self.partner

    @task(2)
    def home(self) -> None:
        self.get("/partner/", "partner: my families")

    @task(2)
    def family_work(self) -> None:
        self.get(f"/partner/families/{random.choice(self.families)}/", "partner: family work")  # noqa: S311

    @task(2)
    def log_contact(self) -> None:
        family = random.choice(self.families)  # noqa: S311
        path = f"/partner/families/{family}/contacts/new/"
        html = self.get(path, "partner: contact form")
        changes = {
            "token": str(uuid.uuid4()),
            "contact_date": (date.today() - timedelta(days=random.randint(0, 13))).isoformat(),  # noqa: S311
            "duration_quarters": "1",
            "kind": "home_visit",
            "elements": ["home_visitation", "parental_guidance"],
            "notes": "Talked about the week ahead.",
        }
        self.post_form(path, html, changes, "partner: log a contact (POST)", "/partner/")


class Assessor(TrialUser):
    weight = 2

    def username(self) -> str:
        return DATA["assessor"]

    @task(3)
    def grid(self) -> None:
        self.get("/followups/", "assessor: follow-up grid")

    @task(1)
    def grid_later_page(self) -> None:
        self.get("/followups/?page=20", "assessor: grid, page 20")

    @task(1)
    def overdue(self) -> None:
        self.get("/followups/?state=overdue", "assessor: grid, overdue")

    @task(2)
    def worklist(self) -> None:
        self.get("/followups/worklist/", "assessor: worklist")


class PrincipalInvestigatorPages(TrialUser):
    """The PI's pages without the downloads, for the throughput of pages alone (bench/load.py's "pages" run): a
    report PDF holds a worker for a second or more, and the issue's goal compares pages with the bare view."""

    weight = 1

    def username(self) -> str:
        return DATA["pi"]

    @task(3)
    def caseload(self) -> None:
        self.get("/caseload/", "PI: caseload (all sites)")

    @task(2)
    def report(self) -> None:
        self.get("/reports/", "PI: feasibility report page")


class PrincipalInvestigator(PrincipalInvestigatorPages):
    """The PI: the pages, and the report's downloads."""

    @task(1)
    def download_pdf(self) -> None:
        self.get("/reports/feasibility.pdf", "download: report PDF")

    @task(1)
    def download_xlsx(self) -> None:
        self.get("/reports/feasibility.xlsx", "download: report spreadsheet")


class Script(HttpUser):
    """A script on the API with a token of its own (read and randomise)."""

    weight = 1
    wait_time = WAIT

    def on_start(self) -> None:
        self.client.trust_env = False
        self.client.verify = os.environ.get("BENCH_LOAD_CERT", True)
        tokens = DATA["tokens"]
        self.client.headers["Authorization"] = f"Bearer {tokens[next(TOKEN_NUMBER) % len(tokens)]}"

    def call(self, method: str, path: str, name: str, expect: int, **kwargs) -> dict:
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return {}
            return response.json()

    @task(3)
    def families(self) -> None:
        answer = self.call("GET", "/api/v1/families/?page_size=25", "API: family list", 200)
        results = answer.get("results") or []
        if results:
            study_id = random.choice(results)["study_id"]  # noqa: S311
            self.call("GET", f"/api/v1/families/{study_id}/", "API: family", 200)

    @task(1)
    def randomise(self) -> None:
        study_id = next(READY, None)
        if study_id is None:
            self.families()
            return
        body = {"study_id": study_id, "site": DATA["site"]}
        self.call("POST", "/api/v1/randomisations/", "API: randomise (POST)", 201, json=body)


class Bare(HttpUser):
    """The ceiling: a view with no query, through the same Gunicorn and middleware (only in the bare run)."""

    wait_time = WAIT

    def on_start(self) -> None:
        self.client.trust_env = False
        self.client.verify = os.environ.get("BENCH_LOAD_CERT", True)

    @task
    def bare(self) -> None:
        with self.client.get("/bench/bare", name="bare view", catch_response=True) as response:
            if response.status_code != 200 or response.text != "ok":
                response.failure(f"{response.status_code}")
