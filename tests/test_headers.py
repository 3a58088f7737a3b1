"""Every page carries a Content-Security-Policy (scripts, styles and everything else from our own origin only), and
every page a signed-in user sees is never stored by a browser or proxy cache (Cache-Control: no-store): pages show
identifiers, notes and arms, which must not outlive the session on a shared computer.

The policy allows no inline script and no inline style, so the pages must have none: the crawl below checks the
HTML of every role's pages for them (the browser test checks that a browser reports no violation)."""

import re

import pytest
from django.urls import reverse

from randomization.tests.factories import ready_to_randomise
from tests.test_access_matrix import frank_as_partner
from trial.models import TrialSettings
from visits.tests.factories import assigned_family, log_contact

POLICY_DIRECTIVES = {"default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'self'"}


@pytest.fixture
def family(request, oei, alice):
    """frank's family: an intervention family at Øvre Eiker with a contact logged."""
    assigned = assigned_family(oei, researcher=alice, to=frank_as_partner(request))
    log_contact(assigned, by=request.getfixturevalue("frank"), notes="Talked about school")
    return assigned


def pages_of(role: str, family) -> list[str]:
    study_id = family.study_id
    pages = {
        "alice": [
            reverse("families:list"),
            reverse("families:detail", args=[study_id]),
            reverse("families:withdraw", args=[study_id]),
            reverse("visits:caseload"),
            reverse("visits:dose"),
            reverse("visits:family", args=[study_id]),
        ],
        "carol": [reverse("families:list"), reverse("families:detail", args=[study_id])],
        "frank": [reverse("visits:partner_home"), reverse("visits:family", args=[study_id])],
        "paula": [
            reverse("families:list"),
            reverse("families:detail", args=[study_id]),
            reverse("randomization:lists"),
            reverse("trial_settings"),
        ],
        "dina": [
            reverse("randomization:lists"),
            reverse("randomization:list", args=["OEI"]),
            reverse("trial_settings"),
            "/admin/",
            reverse("admin:trial_trialsettings_change", args=[TrialSettings.current().pk]),
        ],
        "adam": ["/admin/", reverse("admin:auth_user_changelist"), reverse("home")],
    }
    return [reverse("password_change"), *pages[role]]


def policy(response) -> set[str]:
    return {directive.strip() for directive in response["Content-Security-Policy"].split(";")}


@pytest.mark.parametrize("role", ["alice", "carol", "frank", "paula", "dina", "adam"])
def test_every_page_of_every_role_has_the_policy_and_is_never_stored(client, request, family, role):
    client.force_login(request.getfixturevalue(role))

    for url in pages_of(role, family):
        response = client.get(url)
        assert response.status_code == 200, url
        assert policy(response) >= POLICY_DIRECTIVES, url
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


def test_the_login_page_has_the_policy(client, db):
    response = client.get(reverse("login"))

    assert policy(response) >= POLICY_DIRECTIVES


def test_an_error_page_of_a_signed_in_user_is_never_stored_either(client, alice):
    client.force_login(alice)

    response = client.get("/families/OEI-999/")

    assert response.status_code == 404
    assert "no-store" in response["Cache-Control"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.IGNORECASE)


@pytest.mark.parametrize(
    "role",
    [
        "carol",
        "dina",
        "adam",
        "alice",
        "frank",
        "paula",
    ],
)
def test_no_page_has_an_inline_script_style_or_event_handler(client, request, family, role):
    client.force_login(request.getfixturevalue(role))

    found = {}
    for url in pages_of(role, family):
        page = client.get(url).content.decode()
        inline = INLINE_SCRIPT.findall(page) + INLINE_STYLE.findall(page) + INLINE_HANDLER.findall(page)
        if inline:
            found[url] = inline
    assert found == {}


def test_no_template_has_an_inline_script_style_or_event_handler():
    """Every template, not only the pages crawled above: a page added later (recruitment's bar was one) cannot bring
    an inline style that the policy would silently drop in the browser."""
    from django.conf import settings

    found = {}
    for template in sorted((settings.BASE_DIR / "templates").rglob("*.html")):
        text = template.read_text()
        inline = INLINE_SCRIPT.findall(text) + INLINE_STYLE.findall(text) + INLINE_HANDLER.findall(text)
        if inline:
            found[str(template.relative_to(settings.BASE_DIR))] = inline
    assert found == {}


def test_the_family_page_of_a_partner_without_contacts_has_no_inline_style(client, oei, alice):
    client.force_login(alice)
    waiting = ready_to_randomise(oei, by=alice)

    page = client.get(reverse("families:detail", args=[waiting.study_id])).content.decode()

    assert INLINE_STYLE.findall(page) == []
