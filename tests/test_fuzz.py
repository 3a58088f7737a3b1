"""Hostile input to every form of the trial: never a server error, never a partial record.

For every page of the URL table (tests/test_access_matrix.py) that takes a POST, as a user allowed to post it,
starting from the table's valid submission, the test sends what a careless or hostile client could: Unicode digits
("²", "٣"), numbers thousands of digits long, strings past every column's length, NUL bytes, deeply nested and
huge JSON, impossible dates ("0000-00-00", "99.99.9999"), empty and blank values, and several values where the form
expects one. Each submission runs in a transaction that is rolled back, so every one starts from the same state.

For each: the answer is never a 500 (the test client raises the view's exception), and an answer that is not the
redirect of a successful action (the form again, a refusal) has written nothing to the trial's records.

Two passes per page: a deterministic sweep (every hostile value in every field at once, the worst ones in each field
alone), and Hypothesis mixing hostile values, lists and missing keys across fields.
"""

import json
import re
from html.parser import HTMLParser

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_access_matrix import (
    PAGES,
    ROLES,
    Page,
    family_for,
    form_data,
    lars,  # noqa: F401  (fixtures the table's roles need)
    nora,  # noqa: F401
    research_records,
    url_of,
)
from trial.models import TrialSettings

NESTED_JSON = "[" * 3000 + "]" * 3000
HUGE_JSON = json.dumps(list(range(30_000)))
HOSTILE = [
    "²",
    "٣",
    "9" * 5000,
    "-" + "9" * 5000,
    "x" * 300,
    "y" * 5000,
    "\x00",
    "1\x00",
    NESTED_JSON,
    HUGE_JSON,
    '{"a": {"b": {"c": []}}}',
    "0000-00-00",
    "99.99.9999",
    "31.02.2026",
    "",
    "   ",
    "-1",
    "1e309",
    "NaN",
    "<script>alert(1)</script>",
]
# The sweep puts every HOSTILE value into all fields at once (what each field's own cleaning does with it), and
# these into each field alone, the rest valid (what the view and the service do with it); all of them into each
# field alone would take too long.
EACH_FIELD_ALONE = ["²", "9" * 5000, "x" * 300]


class FormFields(HTMLParser):
    """The names of the fields of the page's POST forms in <main> (not the language menu nor the logout button)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.in_main = False
        self.in_post_form = False

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "main":
            self.in_main = True
        elif tag == "form":
            self.in_post_form = self.in_main and (attributes.get("method") or "").lower() == "post"
        elif tag in ("input", "select", "textarea") and self.in_post_form and attributes.get("name"):
            self.names.add(attributes["name"])

    def handle_endtag(self, tag) -> None:
        if tag == "form":
            self.in_post_form = False
        elif tag == "main":
            self.in_main = False


def poster_of(page: Page) -> str:
    """A role allowed to post the page: one whose POST acts, else one who gets the form back."""
    for wanted in ("acted", "form_error"):
        for role, expected in page.post.items():
            if getattr(expected, wanted):
                return role
    raise AssertionError("no role may post this page")


FORM_PAGES = {name: page for name, page in PAGES.items() if page.post and name != "logout"}
# The admin's own forms are not in the URL table; the one for data managers, the trial settings, is fuzzed too.
ADMIN_SETTINGS = "admin:trial_trialsettings_change"


def fuzz_params():
    """The pages to fuzz: every page with a form in the URL table, and the admin's trial settings."""
    for name in [*FORM_PAGES, ADMIN_SETTINGS]:
        yield pytest.param(name, id=name)


@pytest.fixture
def fuzz_page(request, oei, alice):
    """(client, url, valid submission, field names, records before) for the page named by the test's parameter."""
    url_name = request.node.callspec.params["url_name"]
    if url_name == ADMIN_SETTINGS:
        return admin_settings_page(request)
    page = PAGES[url_name]
    family = family_for(page, request)
    url = url_of(url_name, family, page)
    client = Client(raise_request_exception=True)
    role = poster_of(page)
    if ROLES[role] is not None:
        client.force_login(request.getfixturevalue(ROLES[role]))
    valid = form_data(url_name, site=oei, researcher=alice, request=request)
    fields = set(valid)
    shown = client.get(url)
    if shown.status_code == 200:
        parser = FormFields()
        parser.feed(shown.content.decode())
        fields |= parser.names
    fields.discard("csrfmiddlewaretoken")
    return client, url, {key: as_values(value) for key, value in valid.items()}, sorted(fields), research_records()


def admin_settings_page(request):
    client = Client(raise_request_exception=True)
    client.force_login(request.getfixturevalue("dina"))
    url = reverse(ADMIN_SETTINGS, args=[TrialSettings.current().pk])
    form = client.get(url).context["adminform"].form
    valid = {name: form[name].field.prepare_value(form[name].value()) for name in form.fields}
    valid = {name: as_values("" if value is None else value) for name, value in valid.items()}
    valid["reason"] = ["Protocol amendment"]
    return client, url, valid, sorted(valid), research_records()


def as_values(value) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


# Pages that answer an accepted form on the same page (200) instead of redirecting, and what marks that answer: the
# API tokens page shows the new key once, in the POST's own response.
ANSWERED_IN_PAGE = {"/accounts/tokens/": b"data-token-key"}


def post_and_check(client: Client, url: str, data: dict[str, list[str]], before: dict) -> None:
    """Post `data` in a transaction that is rolled back; a 500 raises, a refused form must have written nothing."""
    with transaction.atomic():
        response = client.post(url, data)
        assert response.status_code != 500
        marker = ANSWERED_IN_PAGE.get(url)
        accepted = response.status_code == 302 or (
            response.status_code == 200 and marker is not None and marker in response.content
        )
        if not accepted:
            assert research_records() == before, f"a {response.status_code} answer wrote to the trial's records"
        transaction.set_rollback(True)


@pytest.mark.parametrize("url_name", list(fuzz_params()))
def test_each_hostile_value_in_each_field_is_never_a_500_nor_a_partial_record(fuzz_page, url_name):
    client, url, valid, fields, before = fuzz_page

    for value in HOSTILE:
        post_and_check(client, url, valid | {key: [value] for key in fields}, before)
    post_and_check(client, url, valid | {key: ["1", "²"] for key in fields}, before)  # two values where one is expected
    for field in fields:
        for value in EACH_FIELD_ALONE:
            post_and_check(client, url, valid | {field: [value]}, before)


@st.composite
def spoiled(draw, valid: dict[str, list[str]], fields: list[str]) -> dict[str, list[str]]:
    data = {key: list(values) for key, values in valid.items()}
    keys = [*fields, "unexpected"]  # a key no form expects, also for a form without fields
    for field in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=6, unique=True)):
        action = draw(st.sampled_from(["replace", "replace", "list", "drop"]))
        if action == "replace":
            data[field] = [draw(st.sampled_from(HOSTILE))]
        elif action == "list":
            data[field] = draw(st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=3))
        else:
            data.pop(field, None)
    return data


MIXES = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("url_name", list(fuzz_params()))
@MIXES
@given(data=st.data())
def test_hostile_mixes_across_fields_are_never_a_500_nor_a_partial_record(fuzz_page, url_name, data):
    client, url, valid, fields, before = fuzz_page

    post_and_check(client, url, data.draw(spoiled(valid, fields)), before)


def test_it_fuzzes_every_form_of_the_url_table():
    """A new form in the table is fuzzed without anyone adding it here; the login page is in the table too."""
    assert "login" not in FORM_PAGES or FORM_PAGES["login"].post
    assert {"families:register", "trial_settings", "visits:contact_new", "randomization:generate"} <= set(FORM_PAGES)
    assert all(re.fullmatch(r"[a-z_:]+", name) for name in FORM_PAGES)
