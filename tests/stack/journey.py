"""A release's test journey, at the HTTP level, against a running trial with the demo loaded: what each role does on
an ordinary day. tests/stack/test_upgrade.py runs it against the previous release and, after the new release's
`migrate`, runs it again against the previous release's Gunicorn on the migrated database, and against the new one.

Keep it at the HTTP level (pages as a browser posts them, the API with tokens made on the tokens page) and free of
imports from the project: the next release runs THIS file (taken from this release's commit) against its migrated
database, so it must keep working with nothing but a URL, a certificate and the demo users' passwords.

    target = Target(stack.base_url, str(stack.cert), stack.passwords)
    written = run(target, tag="before")
    verify(target, written)
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser

import requests

TIMEOUT = 60


class JourneyError(AssertionError):
    pass


@dataclass
class Target:
    """Where the trial answers: its base URL (https://127.0.0.1:port), the certificate to trust, the passwords."""

    base_url: str
    cert: str
    passwords: dict[str, str]
    # Every answer the journey got: (method, path, status), so a test can look for a 5xx among them.
    answers: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class Written:
    """What one run of the journey wrote, to be found again later (verify)."""

    study_id: str
    randomisation_id: str
    arm: str
    partner_family: str
    contact_id: int
    contact_date: str
    assessment_months: int
    report_bytes: int


class FormParser(HTMLParser):
    """The fields of the page's POST forms as a browser would send them unchanged: hidden and text inputs with their
    values, checked boxes and radios, selected options, textareas; plus every option offered, by field name."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(
                {"action": attributes.get("action", ""), "method": attributes.get("method", "get").lower()}
                | {"values": {}, "options": {}}
            )
            return
        if not self.forms:
            return
        form = self.forms[-1]
        name = attributes.get("name")
        if tag == "input" and name:
            kind = attributes.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                form["options"].setdefault(name, []).append(attributes.get("value", "on"))
                if "checked" in attributes:
                    form["values"].setdefault(name, []).append(attributes.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                form["values"][name] = attributes.get("value", "")
        elif tag == "select" and name:
            self._select = name
            form["values"].setdefault(name, "")
        elif tag == "option" and self._select:
            value = attributes.get("value", "")
            form["options"].setdefault(self._select, []).append(value)
            if "selected" in attributes:
                form["values"][self._select] = value
        elif tag == "textarea" and name:
            self._textarea = name
            form["values"][name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1]["values"][self._textarea] += data


def post_form(html: str, field_name: str) -> dict:
    """The page's POST form that has a field `field_name` (pages also hold the language menu's and the sign-out
    forms)."""
    parser = FormParser()
    parser.feed(html)
    for form in parser.forms:
        if form["method"] == "post" and (field_name in form["values"] or field_name in form["options"]):
            return form
    raise JourneyError(f"the page has no form with a field {field_name!r}:\n{html[:2000]}")


class Journey:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.sessions: dict[str, requests.Session] = {}

    def client(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.target.cert
        return session

    def url(self, path: str) -> str:
        return self.target.base_url + path

    def call(self, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
        answer = session.request(method, self.url(path), timeout=TIMEOUT, allow_redirects=False, **kwargs)
        self.target.answers.append((method, path, answer.status_code))
        if answer.status_code >= 500:
            raise JourneyError(f"{method} {path} answered {answer.status_code}:\n{answer.text[:2000]}")
        return answer

    def expect(self, answer: requests.Response, *statuses: int) -> requests.Response:
        if answer.status_code not in statuses:
            raise JourneyError(
                f"{answer.request.method} {answer.url} answered {answer.status_code}, not {statuses}:\n"
                f"{answer.text[:3000]}"
            )
        return answer

    def login(self, username: str) -> requests.Session:
        if username in self.sessions:
            return self.sessions[username]
        session = self.client()
        page = self.expect(self.call(session, "GET", "/accounts/login/"), 200)
        form = post_form(page.text, "username")
        form["values"].update(username=username, password=self.target.passwords[username])
        self.expect(self.submit(session, "/accounts/login/", form["values"]), 302)
        self.sessions[username] = session
        return session

    def submit(self, session: requests.Session, path: str, values: dict) -> requests.Response:
        return self.call(session, "POST", path, data=values, headers={"Referer": self.url(path)})

    def fill_and_post(self, session: requests.Session, path: str, changes: dict, *statuses: int) -> requests.Response:
        """GET the page, post its form with `changes`, expect `statuses` (a redirect after success)."""
        page = self.expect(self.call(session, "GET", path), 200)
        form = post_form(page.text, next(iter(changes)))
        values = form["values"] | changes
        action = form["action"] or path
        return self.expect(self.submit(session, action, values), *statuses)

    def token(self, username: str, scopes: list[str], tag: str) -> str:
        """An API token made on the user's tokens page (the key is shown once, in that answer)."""
        session = self.login(username)
        answer = self.fill_and_post(
            session, "/accounts/tokens/", {"name": f"journey {tag} {uuid.uuid4().hex[:6]}", "scopes": scopes}, 200
        )
        match = re.search(r"fpt_[0-9a-f]{8}_[\w-]+", answer.text)
        if match is None:
            raise JourneyError(f"the tokens page showed no key:\n{answer.text[:2000]}")
        return match.group(0)

    def api(self, key: str, method: str, path: str, body: dict | None = None) -> requests.Response:
        session = self.client()
        session.headers["Authorization"] = f"Bearer {key}"
        return self.call(session, method, path, json=body)


def run(target: Target, tag: str = "") -> Written:
    """The journey: the researcher registers, screens and records consent for a family; the assessor records its
    baseline; the researcher randomises it; the partner logs a contact with one of their families; the PI downloads
    the report. Every step checks its answer; JourneyError says which step failed and how."""
    journey = Journey(target)
    today = datetime.date.today()

    # The researcher: register and screen by the API, consent on the page, randomise by the API.
    key = journey.token("researcher", ["write", "randomise"], tag)
    registered = journey.api(
        key,
        "POST",
        "/api/v1/families/",
        {
            "site": "OEI",
            "referral_date": today.isoformat(),
            "referral_source": "health_service",
            "parent_birth_years": [1990],
            "child_birth_dates": [(today - datetime.timedelta(days=3 * 365)).isoformat()],
            "identifiers": {"contact_name": f"Journey {tag}", "national_id_number": "", "phone": "", "address": ""}
            | {"other_members": ""},
            "submission_id": str(uuid.uuid4()),
        },
    )
    study_id = journey.expect(registered, 201).json()["study_id"]
    screened = journey.api(
        key,
        "POST",
        f"/api/v1/families/{study_id}/screenings/",
        {
            "screened_on": today.isoformat(),
            "involved_with_child_welfare": True,
            "harmful_circumstances": True,
            "struggle_areas": ["finances", "housing"],
            "rescreening_reason": "",
            "submission_id": str(uuid.uuid4()),
        },
    )
    if not journey.expect(screened, 201).json()["eligible"]:
        raise JourneyError(f"{study_id} was screened not eligible: {screened.text}")
    researcher = journey.login("researcher")
    consent_page = journey.expect(journey.call(researcher, "GET", f"/families/{study_id}/consent/"), 200)
    options = post_form(consent_page.text, "obtained_by")["options"]
    obtained_by = next(value for value in options.get("obtained_by", []) if value)
    journey.fill_and_post(
        researcher,
        f"/families/{study_id}/consent/",
        {"decision": "consented", "decided_on": today.isoformat(), "form_version": "1.0", "obtained_by": obtained_by},
        302,
    )
    # The assessor: the new family's baseline (before the randomisation, as the trial requires), by the API.
    assessor_key = journey.token("assessor", ["write"], tag)
    schedule = journey.expect(journey.api(assessor_key, "GET", f"/api/v1/families/{study_id}/assessments/"), 200)
    due = [a for a in schedule.json()["assessments"] if a["outcome"] == "scheduled" and a["state"] != "not_yet_open"]
    if not due:
        raise JourneyError(f"{study_id} has no assessment to record: {schedule.text}")
    assessment = due[0]
    # The questionnaires on offer are the trial settings' list, as the assessment page offers them.
    assessment_page = journey.call(journey.login("assessor"), "GET", f"/followups/{study_id}/{assessment['months']}/")
    offered = post_form(journey.expect(assessment_page, 200).text, "questionnaires")["options"]["questionnaires"]
    record = {
        "status": "completed",
        "done_on": today.isoformat(),
        "mode": "phone",
        "questionnaires": offered[:1],
        "submission_id": str(uuid.uuid4()),
        "confirm_outside_window": True,
    }
    if assessment["months"] > 0:
        record["arm_guess"] = "unsure"
    months = assessment["months"]
    recorded = journey.api(assessor_key, "POST", f"/api/v1/families/{study_id}/assessments/{months}/", record)
    journey.expect(recorded, 201)

    randomised = journey.api(key, "POST", "/api/v1/randomisations/", {"study_id": study_id, "site": "OEI"})
    allocation = journey.expect(randomised, 201).json()

    # The partner: a contact with the first family on their home page.
    partner = journey.login("partner")
    home = journey.expect(journey.call(partner, "GET", "/partner/"), 200).text
    families = re.findall(r'href="/partner/families/([A-Z]+-\d+)/"', home)
    if not families:
        raise JourneyError(f"the partner's home page lists no family:\n{home[:2000]}")
    partner_family = families[0]
    work_path = f"/partner/families/{partner_family}/"
    before = set(re.findall(r"/partner/contacts/(\d+)/", journey.call(partner, "GET", work_path).text))
    contact_page = journey.expect(journey.call(partner, "GET", f"{work_path}contacts/new/"), 200)
    contact_options = post_form(contact_page.text, "kind")["options"]
    journey.fill_and_post(
        partner,
        f"{work_path}contacts/new/",
        {
            "contact_date": today.isoformat(),
            "duration_quarters": "3",
            "kind": contact_options["kind"][0],
            "elements": [contact_options["elements"][0]],
            "notes": "",
        },
        302,
    )
    after = set(re.findall(r"/partner/contacts/(\d+)/", journey.call(partner, "GET", work_path).text))
    new_contacts = after - before
    if len(new_contacts) != 1:
        raise JourneyError(f"the partner's family page shows {len(new_contacts)} new contacts, not 1")
    contact_id = int(new_contacts.pop())

    # The PI: the feasibility report.
    pi = journey.login("pi")
    report = journey.expect(journey.call(pi, "GET", "/reports/feasibility.xlsx"), 200)
    if not report.content.startswith(b"PK"):
        raise JourneyError(f"the report is not a workbook: {report.headers.get('Content-Type')}")

    return Written(
        study_id=study_id,
        randomisation_id=allocation["randomisation_id"],
        arm=allocation["arm"],
        partner_family=partner_family,
        contact_id=contact_id,
        contact_date=today.isoformat(),
        assessment_months=months,
        report_bytes=len(report.content),
    )


def verify(target: Target, written: Written) -> None:
    """What `run` wrote is there, as the pages and the API show it."""
    journey = Journey(target)
    key = journey.token("researcher", [], "verify")
    family = journey.expect(journey.api(key, "GET", f"/api/v1/families/{written.study_id}/"), 200).json()
    if family["status"] != "randomised" or (family["allocation"] or {}).get("randomisation_id") != (
        written.randomisation_id
    ):
        raise JourneyError(f"{written.study_id} is not randomised as {written.randomisation_id}: {family}")
    if family["allocation"]["arm"] != written.arm:
        raise JourneyError(f"{written.study_id}'s arm changed: {family['allocation']['arm']} != {written.arm}")
    if (family["consent"] or {}).get("decision") != "consented":
        raise JourneyError(f"{written.study_id}'s consent is missing: {family}")
    schedule = journey.api(key, "GET", f"/api/v1/families/{written.study_id}/assessments/")
    recorded = [
        a for a in journey.expect(schedule, 200).json()["assessments"] if a["months"] == written.assessment_months
    ]
    if not recorded or recorded[0]["outcome"] != "completed":
        raise JourneyError(f"{written.study_id}'s assessment at {written.assessment_months} months is not recorded")
    partner = journey.login("partner")
    contact = journey.expect(journey.call(partner, "GET", f"/partner/contacts/{written.contact_id}/"), 200)
    day = datetime.date.fromisoformat(written.contact_date)
    if not any(shown in contact.text for shown in (written.contact_date, day.strftime("%d.%m.%Y"))):
        raise JourneyError(f"contact {written.contact_id} does not show its date {written.contact_date}")
