"""Personal API tokens: what is stored (the hash only), the key shown once, expiry, revoking (by the owner and by an
administrator), deactivated users, malformed headers, last-used writes, scopes within the roles, throttling per token,
the audit trail, and the tokens' pages and admin."""

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api import tokens as token_service
from api.models import ApiToken, Scope
from api.permissions import TokenScope
from api.tests.helpers import Api, api_as, key_for
from api.tokens import scopes_for, token_create, token_for_key, token_revoke
from reports.audit import history_sources
from trial.roles import Role
from trial.tests.factories import UserFactory

ME = "/api/v1/me/"
TOKENS = reverse("tokens:list")


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body


def make_token_on_page(client, user, **data):
    client.force_login(user)
    return client.post(TOKENS, {"name": "analysis script", "days": 90, **data})


def stored_text(key_part: str) -> list[str]:
    """Every text column of the tokens' table and its history table that holds `key_part`."""
    found = []
    with connection.cursor() as cursor:
        for table in ("api_apitoken", "api_historicalapitoken"):
            for column in connection.introspection.get_table_description(cursor, table):
                # Every column as text, so that no type of column is left out of the search.
                cursor.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE CAST({connection.ops.quote_name(column.name)} AS TEXT) "  # noqa: S608 (names from the introspection)
                    "LIKE %s",
                    [f"%{key_part}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column.name}")
    return found


# ---------------------------------------------------------------------------------------------------------
# What is stored, and the key shown once


def test_it_stores_only_the_hash_of_the_key(client, alice):
    response = make_token_on_page(client, alice, scopes=["randomise"])
    key = response.context["new"].key
    token = ApiToken.objects.get(user=alice)
    secret = key.split("_", 2)[2]
    token_revoke(token=token, revoked_by=alice)  # a second history row

    assert stored_text(key) == []
    assert stored_text(secret) == []
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    # The history keeps no hash either (simple-history's excluded fields).
    assert stored_text(token.key_hash) == ["api_apitoken.key_hash"]


def test_it_keeps_nothing_the_key_could_be_derived_from(alice):
    # Two tokens made at the same instant by the same user with the same name and scopes differ in their 256 random
    # bits, which are stored nowhere.
    with time_machine.travel("2026-05-04 10:00 +02:00", tick=False):
        first = token_create(user=alice, name="script", scopes=["read"])
        token_revoke(token=first.token, revoked_by=alice)
        second = token_create(user=alice, name="script", scopes=["read"])
    first_secret, second_secret = (new.key.split("_", 2)[2] for new in (first, second))
    assert first_secret != second_secret
    assert len(first_secret) == 43  # 32 bytes, URL-safe base64
    assert stored_text(first_secret) == [] and stored_text(second_secret) == []
    assert first.token.prefix != second.token.prefix


def test_it_shows_the_key_once_and_never_again(client, alice):
    response = make_token_on_page(client, alice)
    key = response.context["new"].key
    page = response.content.decode()

    assert response.status_code == 200
    assert key in page
    assert f'curl -H "Authorization: Bearer {key}" http://testserver/api/v1/me/' in page
    assert "not shown again" in page
    assert "no-store" in response["Cache-Control"]
    assert not any(key in str(value) for value in client.session.values())

    again = client.get(TOKENS)
    assert key not in again.content.decode()
    assert key.split("_")[1] in again.content.decode()  # the prefix tells the tokens apart
    assert Api(key).get(ME).json()["username"] == "alice"


def test_it_never_gives_two_tokens_one_prefix(alice, monkeypatch):
    taken = token_create(user=alice, name="first", scopes=["read"]).token.prefix
    draws = iter([taken, taken, "0123abcd"])
    monkeypatch.setattr(token_service.secrets, "token_hex", lambda nbytes: next(draws))

    new = token_create(user=alice, name="second", scopes=["read"])

    assert new.token.prefix == "0123abcd"
    assert Api(new.key).get(ME).status_code == 200
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(
            user=alice, name="third", prefix=taken, key_hash="0" * 64, expires_at=timezone.now() + timedelta(days=1)
        )


def test_it_refuses_a_second_live_token_of_the_same_name_but_not_after_revoking(alice):
    first = token_create(user=alice, name="script", scopes=["read"])
    with pytest.raises(ValidationError) as refused:
        token_create(user=alice, name=" script ", scopes=["read"])
    assert "name" in refused.value.message_dict
    token_revoke(token=first.token, revoked_by=alice)
    assert token_create(user=alice, name="script", scopes=["read"]).token.name == "script"


# ---------------------------------------------------------------------------------------------------------
# Which tokens work


def test_it_refuses_an_expired_token(alice):
    with time_machine.travel("2026-03-01 09:00 +01:00", tick=False):
        key = key_for(alice, days=2)
        assert Api(key).get(ME).status_code == 200
    with time_machine.travel("2026-03-03 09:00 +01:00", tick=False):
        body = problem_of(Api(key).get(ME), 401)
    assert "expired" in body["detail"]


def test_it_refuses_a_revoked_token(alice):
    key = key_for(alice)
    token_revoke(token=token_for_key(key), revoked_by=alice)

    body = problem_of(Api(key).get(ME), 401)

    assert "revoked" in body["detail"]


def test_it_refuses_the_token_of_a_deactivated_user(alice):
    key = key_for(alice)
    alice.is_active = False
    alice.save()

    body = problem_of(Api(key).get(ME), 401)

    assert "deactivated" in body["detail"]


def test_it_refuses_a_wrong_secret_with_a_right_prefix(alice):
    key = key_for(alice)
    tag, prefix, secret = key.split("_", 2)
    wrong = f"{tag}_{prefix}_{'A' * len(secret)}"

    body = problem_of(Api(wrong).get(ME), 401)

    assert body["detail"] == "This token is not valid."
    assert token_for_key(wrong) is None


@pytest.mark.parametrize(
    "header",
    [
        "",  # no header at all: not authenticated
        "{key}",  # no "Bearer"
        "Token {key}",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer {key} extra",
        "Bearer  {key} {key}",
        "Bearer fpt_",
        "Bearer fpt__",
        "Bearer fpt_zzzzzzzz_{secret}",
        "Bearer xyz_{prefix}_{secret}",
        "Bearer fpt_{prefix}_{secret}x",
        "Bearer fpt_{prefix}_ø{secret}",
        "Bearer fpt_{prefix}_€{secret}",
        "Bearer fpt_{prefix}_\x00{secret}",
        "Bearer fpt_{prefix}'; DROP TABLE api_apitoken; --",
        "Bearer " + "a" * 5000,
    ],
)
def test_it_answers_a_malformed_header_with_a_401_problem(client, alice, header):
    key = key_for(alice)
    _tag, prefix, secret = key.split("_", 2)
    value = header.format(key=key, prefix=prefix, secret=secret)

    response = client.get(ME, **({"HTTP_AUTHORIZATION": value} if value else {}))

    problem_of(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_it_writes_the_last_use_at_most_once_a_minute(alice):
    api = api_as(alice)
    token = ApiToken.objects.get(user=alice)
    assert token.last_used_at is None

    with time_machine.travel("2026-06-01 12:00:00 +02:00", tick=False):
        with CaptureQueriesContext(connection) as queries:
            for _call in range(5):
                assert api.get(ME).status_code == 200
        first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    with time_machine.travel("2026-06-01 12:00:59 +02:00", tick=False), CaptureQueriesContext(connection) as later:
        api.get(ME)
    with time_machine.travel("2026-06-01 12:01:01 +02:00", tick=False), CaptureQueriesContext(connection) as after:
        api.get(ME)

    def updates(captured) -> int:
        return sum(query["sql"].startswith('UPDATE "api_apitoken"') for query in captured.captured_queries)

    assert updates(queries) == 1
    assert updates(later) == 0
    assert updates(after) == 1
    assert first_use == timezone.now().replace(year=2026, month=6, day=1, hour=10, minute=0, second=0, microsecond=0)
    # The last use is no change of the token: it makes no history row.
    assert token.history.count() == 1


# ---------------------------------------------------------------------------------------------------------
# Scopes: never wider than the user's roles, then or now


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        ("alice", ["read", "write", "randomise"]),
        ("carol", ["read", "write"]),
        ("frank", ["read"]),
        ("paula", ["read", "export"]),
        ("dina", ["read", "export"]),
        ("adam", ["read", "export"]),
    ],
)
def test_it_allows_scopes_by_role(request, user, allowed):
    assert scopes_for(request.getfixturevalue(user)) == allowed


def test_it_refuses_scopes_wider_than_the_users_roles(carol, frank):
    with pytest.raises(ValidationError) as refused:
        token_create(user=carol, name="guess", scopes=["read", "randomise"])
    assert refused.value.message_dict["scopes"] == ["Your roles do not allow these scopes: randomise."]
    with pytest.raises(ValidationError):
        token_create(user=frank, name="export", scopes=["read", "export", "nonsense"])
    nora = UserFactory(username="nora")
    with pytest.raises(PermissionDenied):
        token_create(user=nora, name="anything", scopes=["read"])
    assert not ApiToken.objects.exists()


def test_the_form_offers_only_the_scopes_the_roles_allow(client, carol):
    client.force_login(carol)
    page = client.get(TOKENS).content.decode()
    assert 'value="write"' in page
    assert 'value="randomise"' not in page and 'value="export"' not in page

    response = client.post(TOKENS, {"name": "guess", "days": 30, "scopes": ["randomise"]})

    assert response.status_code == 200
    assert "scopes" in response.context["form"].errors
    assert response.context["new"] is None
    assert not ApiToken.objects.exists()


def scope_check(user, token: ApiToken, scope: str) -> bool:
    user = type(user).objects.get(pk=user.pk)  # the roles as they are now (they are cached on a user object)
    return TokenScope().has_permission(SimpleNamespace(auth=token, user=user), SimpleNamespace(required_scope=scope))


def test_a_token_loses_the_rights_its_user_loses(alice, oei):
    key = key_for(alice, "write", "randomise")
    token = token_for_key(key)
    assert token is not None and scope_check(alice, token, Scope.RANDOMISE)

    # alice becomes an outcome assessor at her site: blinded, she may no longer randomise.
    alice.groups.add(Group.objects.get_or_create(name=Role.OUTCOME_ASSESSOR)[0])
    me = Api(key).get(ME).json()
    assert me["roles"] == ["outcome_assessor", "researcher"] and me["blinded"] is True
    assert not scope_check(alice, token, Scope.RANDOMISE)
    assert scope_check(alice, token, Scope.WRITE)

    # and then loses every role: the token is refused whatever it asks.
    alice.groups.clear()
    body = problem_of(Api(key).get(ME), 403)
    assert body["detail"] == "Your account has no role in the trial."
    assert not scope_check(alice, token, Scope.READ)


def test_it_refuses_a_scope_the_token_lacks(alice):
    token = token_for_key(key_for(alice))
    assert token is not None
    assert scope_check(alice, token, Scope.READ)
    assert not scope_check(alice, token, Scope.RANDOMISE)


# ---------------------------------------------------------------------------------------------------------
# Throttling, per token


@pytest.fixture
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@override_settings(API_RATE="3/min")
def test_it_throttles_each_token_apart(alice, empty_cache):
    first, second = api_as(alice), api_as(alice)

    assert [first.get(ME).status_code for _call in range(3)] == [200, 200, 200]
    response = first.get(ME)
    body = problem_of(response, 429)

    assert int(response["Retry-After"]) > 0
    assert "throttled" in body["detail"].lower()
    assert second.get(ME).status_code == 200


@override_settings(API_RATE="100/min", API_WRITE_RATE="2/min")
def test_the_write_throttle_counts_only_posts(alice, empty_cache):
    api = api_as(alice)
    assert all(api.get(ME).status_code == 200 for _call in range(6))
    # /me/ takes no POST (405), but the throttle counts the calls before the method is looked at.
    assert [api.post(ME).status_code for _call in range(2)] == [405, 405]
    problem_of(api.post(ME), 429)
    assert api.get(ME).status_code == 200


# ---------------------------------------------------------------------------------------------------------
# The audit trail


def test_making_and_revoking_a_token_is_in_the_audit_log(client, alice, paula):
    assert "api.apitoken" in {source.key for source in history_sources()}
    key = make_token_on_page(client, alice, scopes=["write"]).context["new"].key
    token = ApiToken.objects.get(user=alice)
    client.post(reverse("tokens:revoke", args=[token.pk]))
    assert [row.history_type for row in token.history.order_by("history_id")] == ["+", "~"]
    assert {row.history_user for row in token.history.all()} == {alice}

    client.force_login(paula)
    response = client.get(reverse("reports:audit"), {"kind": "api.apitoken"})
    rows = [vars(row) for row in response.context["page"].rows]
    page = response.content.decode()

    assert [row["what"] for row in rows] == ["API token changed", "API token created"]
    assert {row["who"] for row in rows} == {"alice"}
    assert "Revoked at" in page or "revoked at" in page
    for secret in (key, key.split("_", 2)[2], token.key_hash):
        assert secret not in page
    csv = b"".join(client.get(reverse("reports:audit_csv")).streaming_content).decode()
    assert key not in csv and token.key_hash not in csv


# ---------------------------------------------------------------------------------------------------------
# The pages


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "days": 90}, "name"),
        ({"name": "   ", "days": 90}, "name"),
        ({"name": "x" * 65, "days": 90}, "name"),
        ({"name": "script", "days": 0}, "days"),
        ({"name": "script", "days": 366}, "days"),
        ({"name": "script", "days": "ninety"}, "days"),
        ({"name": "script", "days": ""}, "days"),
        ({"name": "script", "days": 90, "scopes": ["delete everything"]}, "scopes"),
        ({"name": "taken", "days": 90}, "name"),
    ],
)
def test_the_page_shows_bad_input_as_form_errors_in_norwegian(client, alice, data, field):
    token_create(user=alice, name="taken", scopes=["read"])
    client.force_login(alice)

    response = client.post(TOKENS, data, HTTP_ACCEPT_LANGUAGE="nb")

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert response.context["new"] is None
    assert ApiToken.objects.count() == 1
    assert 'lang="nb"' in response.content.decode()


def test_it_makes_a_token_with_the_chosen_scopes_and_expiry(client, alice):
    with time_machine.travel("2026-04-01 08:00 +02:00", tick=False):
        response = make_token_on_page(client, alice, days=7, scopes=["randomise"])
    token = response.context["new"].token
    assert token.scopes == ["read", "randomise"]
    assert token.expires_at - token.created_at == timedelta(days=7)
    assert response.context["form"].is_bound is False  # an empty form for the next one


def test_the_list_shows_each_tokens_state(client, alice):
    live = token_create(user=alice, name="live", scopes=["read"]).token
    revoked = token_revoke(token=token_create(user=alice, name="revoked", scopes=["read"]).token, revoked_by=alice)
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        expired = token_create(user=alice, name="expired", scopes=["read"], days=1).token
    client.force_login(alice)

    page = client.get(TOKENS).content.decode()

    for token, state in ((live, "live"), (revoked, "revoked"), (expired, "expired")):
        assert f'data-token="{token.prefix}" data-state="{state}"' in page
    assert page.count("/revoke/") == 1
    assert reverse("api:docs") in page


def test_the_owner_revokes_a_token_after_a_confirmation(client, alice):
    key = key_for(alice)
    token = token_for_key(key)
    assert token is not None
    client.force_login(alice)
    url = reverse("tokens:revoke", args=[token.pk])

    confirmation = client.get(url)
    assert confirmation.status_code == 200
    assert token.name in confirmation.content.decode()
    assert Api(key).get(ME).status_code == 200

    response = client.post(url)

    assert response.status_code == 302 and response.url == TOKENS
    token.refresh_from_db()
    assert token.revoked_by == alice and token.revoked_at is not None
    assert problem_of(Api(key).get(ME), 401)["detail"] == "This token has been revoked."
    assert 'data-state="revoked"' in client.get(TOKENS).content.decode()


@pytest.mark.parametrize("other", ["bob", "adam"])
def test_nobody_else_revokes_a_token_on_the_page(request, client, alice, other):
    token = token_create(user=alice, name="hers", scopes=["read"]).token
    client.force_login(request.getfixturevalue(other))
    url = reverse("tokens:revoke", args=[token.pk])

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    with pytest.raises(PermissionDenied):
        token_revoke(token=token, revoked_by=request.getfixturevalue("bob"))


def test_a_user_without_a_role_is_told_so_and_makes_no_token(client, alice):
    nora = UserFactory(username="nora")
    old = token_create(user=alice, name="old", scopes=["read"]).token
    ApiToken.objects.filter(pk=old.pk).update(user=nora)  # made while she still had a role
    client.force_login(nora)

    page = client.get(TOKENS)

    assert page.status_code == 200
    assert page.context["form"] is None
    assert "no role in the trial" in page.content.decode()
    assert f'data-token="{old.prefix}"' in page.content.decode()
    assert client.post(TOKENS, {"name": "try", "days": 5}).status_code == 403
    assert ApiToken.objects.count() == 1
    assert client.post(reverse("tokens:revoke", args=[old.pk])).status_code == 302


@pytest.mark.parametrize("page", ["home", "notifications:profile"])
def test_the_user_menu_and_the_profile_link_to_the_tokens(client, frank, page):
    client.force_login(frank)
    response = client.get(reverse(page), follow=True)
    assert f'href="{TOKENS}"' in response.content.decode()


def test_the_api_documentation_has_no_inline_style_or_script(client, alice):
    client.force_login(alice)
    page = client.get(reverse("api:docs"), HTTP_ACCEPT_LANGUAGE="nb").content.decode()
    assert "<style" not in page
    assert "<script>" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "?script=" in page
    assert f'href="{reverse("home")}"' in page


# ---------------------------------------------------------------------------------------------------------
# The admin: administrators revoke anyone's token


def test_an_administrator_revokes_tokens_in_the_admin(client, adam, alice, bob):
    alices, bobs = key_for(alice, "randomise"), key_for(bob)
    tokens = [token_for_key(key) for key in (alices, bobs)]
    client.force_login(adam)
    changelist = reverse("admin:api_apitoken_changelist")

    page = client.get(changelist)
    assert page.status_code == 200
    content = page.content.decode()
    assert all(token is not None and token.prefix in content and token.key_hash not in content for token in tokens)
    assert "Revoke selected tokens" in content
    change = client.get(reverse("admin:api_apitoken_change", args=[tokens[0].pk]))  # type: ignore[union-attr]
    assert change.status_code == 200 and tokens[0].key_hash not in change.content.decode()  # type: ignore[union-attr]

    response = client.post(
        changelist,
        {"action": "revoke_selected", "_selected_action": [tokens[0].pk]},  # type: ignore[union-attr]
        follow=True,
    )

    assert "1 token revoked." in response.content.decode()
    assert problem_of(Api(alices).get(ME), 401)["detail"] == "This token has been revoked."
    assert Api(bobs).get(ME).status_code == 200
    assert ApiToken.objects.get(user=alice).revoked_by == adam


def test_the_admin_adds_changes_and_deletes_no_token(client, adam, alice):
    token = token_create(user=alice, name="hers", scopes=["read"]).token
    client.force_login(adam)
    assert client.get(reverse("admin:api_apitoken_add")).status_code == 403
    assert client.get(reverse("admin:api_apitoken_delete", args=[token.pk])).status_code == 403
    response = client.post(reverse("admin:api_apitoken_change", args=[token.pk]), {"name": "changed"})
    assert response.status_code == 403
    token.refresh_from_db()
    assert token.name == "hers"


def test_only_administrators_see_the_tokens_in_the_admin(client, dina, alice):
    token_create(user=alice, name="hers", scopes=["read"])
    client.force_login(dina)  # staff, for the trial settings
    assert client.get(reverse("admin:api_apitoken_changelist")).status_code == 403
    assert reverse("admin:api_apitoken_changelist") not in client.get("/admin/").content.decode()
    client.force_login(alice)
    assert client.get(reverse("admin:api_apitoken_changelist")).status_code == 302


def test_an_administrator_without_superuser_status_revokes_tokens_too(client, alice):
    ada = UserFactory(username="ada", roles=[Role.ADMINISTRATOR], is_staff=True)
    key = key_for(alice)
    token = token_for_key(key)
    assert token is not None
    client.force_login(ada)

    assert client.get(reverse("admin:api_apitoken_changelist")).status_code == 200
    client.post(reverse("admin:api_apitoken_changelist"), {"action": "revoke_selected", "_selected_action": [token.pk]})

    assert problem_of(Api(key).get(ME), 401)["detail"] == "This token has been revoked."


def test_sending_the_form_again_never_shows_the_key_twice(client, alice):
    first = make_token_on_page(client, alice)
    again = client.post(TOKENS, {"name": "analysis script", "days": 90})  # the browser's reload of the POST

    assert first.context["new"] is not None
    assert again.context["new"] is None
    assert "name" in again.context["form"].errors
    assert first.context["new"].key not in again.content.decode()
    assert ApiToken.objects.count() == 1
