"""Personal API tokens, clicked through in a real browser: a researcher makes a token from the user menu, copies the
key shown once, calls the API with it, and revokes it; an administrator revokes another user's token in the admin.
The test calls the API itself (urllib against the live server), as the researcher's script would."""

import json
import urllib.error
import urllib.request

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from api.models import ApiToken
from api.tests.helpers import key_for

pytestmark = pytest.mark.browser

TOKENS = reverse("tokens:list")


def call_me(live_server, key: str) -> tuple[int, dict]:
    url = f"{live_server.url}/api/v1/me/"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310 (the live server)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the live server's own URL)
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def open_tokens_from_the_user_menu(page: Page, user) -> None:
    page.locator(".dropdown-toggle", has_text=user.get_full_name()).click()
    page.locator(f'.dropdown-menu a[href="{TOKENS}"]').click()
    expect(page).to_have_url(f"{page.url.split('/accounts/')[0]}{TOKENS}")


def test_a_researcher_makes_uses_and_revokes_a_token(open_page, log_in, live_server, alice):
    page = open_page(locale="en-GB")
    log_in(page, alice)
    open_tokens_from_the_user_menu(page, alice)
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="The API's documentation")).to_be_visible()

    page.get_by_label("Name").fill("analysis script")
    page.get_by_label("Randomise").check()
    page.get_by_role("button", name="Make the token").click()

    expect(page.get_by_text("Copy it now: it is not shown again.")).to_be_visible()
    key = page.locator("[data-token-key]").input_value()
    assert key.startswith("fpt_")
    expect(page.locator("[data-token-example]")).to_contain_text(f"Bearer {key}")
    status, me = call_me(live_server, key)
    assert (status, me["username"], me["token"]["scopes"]) == (200, "alice", ["read", "randomise"])

    page.goto(TOKENS)  # back later: the key is gone, the token is listed
    assert key not in page.content()
    row = page.locator(f'[data-token="{key.split("_")[1]}"]')
    expect(row).to_contain_text("analysis script")
    expect(row).to_contain_text("live")

    row.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke the token").click()
    expect(page.get_by_role("status").filter(has_text="is revoked")).to_be_visible()
    expect(row).to_have_attribute("data-state", "revoked")
    status, problem = call_me(live_server, key)
    assert (status, problem["detail"]) == (401, "This token has been revoked.")


def test_a_norwegian_researcher_makes_a_token_and_an_administrator_revokes_it(
    open_page, log_in, live_server, alice, adam
):
    # In Norwegian (the browser's language): found by the page's structure, so that the journey holds whatever
    # the wording; the page is in Norwegian (its lang).
    page = open_page()
    log_in(page, alice)
    open_tokens_from_the_user_menu(page, alice)
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    page.locator("#id_name").fill("REDCap-import")
    page.locator("[data-token-form] button[type=submit]").click()
    key = page.locator("[data-token-key]").input_value()
    assert call_me(live_server, key)[0] == 200
    others = key_for(adam)  # the administrator's own token stays live

    admin = open_page()
    log_in(admin, adam)
    admin.goto(reverse("admin:api_apitoken_changelist"))
    expect(admin.locator("html")).to_have_attribute("lang", "nb")
    token = ApiToken.objects.get(user=alice)
    assert token.key_hash not in admin.content()
    admin.locator(f'input[name="_selected_action"][value="{token.pk}"]').check()
    admin.locator("select[name=action]").select_option("revoke_selected")
    admin.locator("button[name=index]").click()
    expect(admin.locator(".messagelist .success")).to_be_visible()

    status, problem = call_me(live_server, key)
    assert status == 401 and problem["status"] == 401
    assert call_me(live_server, others)[0] == 200
    page.goto(TOKENS)
    expect(page.locator(f'[data-token="{token.prefix}"]')).to_have_attribute("data-state", "revoked")
