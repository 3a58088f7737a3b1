"""Who may call which operation of the API: every operation, as every role, and with every kind of bad token.

OPERATIONS below is the access policy of the API, one row per (method, URL name) and one answer per role; the answers
are the pages' answers (tests/test_access_matrix.py), as docs/api.md says: the API calls the same selectors. Each
role calls with a token holding every scope its roles allow (`api.tokens.scopes_for`), so a 403 for lack of a scope
is the same refusal a page would give for lack of a role. The family a family's operation is called for is
registered at Øvre Eiker (OEI): "of site" means OEI and "of other site" means Larvik (LAR), so every operation that
takes a study ID is called with another site's family too.

test_it_has_a_row_for_every_operation walks the OpenAPI schema and the URL resolver (namespace "api") and fails for
an operation the table does not name, and for a row naming an operation that does not exist: a new operation cannot
ship without deciding who may call it. Every POST that is refused must leave the trial's records as they were.
"""

import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from api.models import ApiToken, Scope
from api.tests.helpers import Api
from api.tokens import scopes_for, token_create, token_revoke
from families.models import Family, FamilyStatus
from families.tests.factories import days_ago, family_in_state
from followups.models import Assessment
from randomization import lists
from randomization.models import Allocation
from randomization.tests.factories import ready_to_randomise
from tests.test_access_matrix import lars, nora, research_records  # noqa: F401 (fixtures)
from trial.models import AuditEvent, EventKind
from trial.roles import Role, roles_of

# Every role of the pages' matrix, and the user (a fixture) who holds it. Calling without a token is one of the
# token cases below (TOKEN_CASES), not a role.
ROLES = {
    "researcher_of_site": "alice",
    "researcher_of_other_site": "bob",
    "assessor_of_site": "carol",
    "assessor_of_other_site": "lars",
    "family_partner": "frank",
    "principal_investigator": "paula",
    "data_manager": "dina",
    "administrator": "adam",
    "no_role": "nora",
}

OK, CREATED, FORBIDDEN, NOT_FOUND, UNAUTHORISED = 200, 201, 403, 404, 401


def rule(*, others: int, **by_role: int) -> dict[str, int]:
    """A status for every role: `others` for each role not named. A user with no role in the trial (left with a
    token made while they had one) is refused every operation, whatever its scope (api.permissions)."""
    unknown = set(by_role) - set(ROLES)
    assert not unknown, f"unknown roles {unknown}"
    return {role: by_role.get(role, others) for role in ROLES} | {"no_role": by_role.get("no_role", FORBIDDEN)}


@dataclass(frozen=True)
class Operation:
    answers: dict[str, int]
    scope: str = Scope.READ
    # The state of the OEI family the operation is called for (its URL's study ID, or the body's): a state of
    # families.tests.factories, "ready" (consented, baseline recorded) or "randomised".
    family_state: str | None = None
    # Needs OEI's allocation list.
    allocation_list: bool = False
    # The role whose call succeeds: the one that calls with bad tokens (and with a read-only token, when the
    # operation needs more than read).
    holder: str = "researcher_of_site"


# Families: researchers and assessors of their sites and the PI read; a family's page is its site's (404 elsewhere).
FAMILY_READERS = rule(
    others=FORBIDDEN,
    researcher_of_site=OK,
    researcher_of_other_site=OK,
    assessor_of_site=OK,
    assessor_of_other_site=OK,
    principal_investigator=OK,
)
FAMILY_PAGE = rule(others=NOT_FOUND, researcher_of_site=OK, assessor_of_site=OK, principal_investigator=OK)
# A change to an OEI family: OEI's researchers only. A token without the write scope is refused before the family
# is looked up (403, whatever the study ID: nothing leaks); a token with it gets the family page's answer (404 at
# another site, 403 to an assessor of the site).
FAMILY_WRITE = rule(
    others=FORBIDDEN, researcher_of_site=CREATED, researcher_of_other_site=NOT_FOUND, assessor_of_other_site=NOT_FOUND
)
# Datasets: data managers and the PI (export scope; the administrator holds it for the audit log, not datasets).
DATASET_READERS = rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK)
AUDIT_READERS = rule(others=FORBIDDEN, data_manager=OK, principal_investigator=OK, administrator=OK)
# Every role (a user with no role is refused: a 403 before a family is looked up, so no 404 tells them anything).
EVERYONE = rule(others=OK)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "me"): Operation(EVERYONE),
    ("GET", "sites"): Operation(EVERYONE),
    ("GET", "families"): Operation(FAMILY_READERS, family_state="consented"),
    # bob researches at LAR only: he may register families, but not at OEI (the body's site).
    ("POST", "families"): Operation(rule(others=FORBIDDEN, researcher_of_site=CREATED), scope=Scope.WRITE),
    ("GET", "family"): Operation(FAMILY_PAGE, family_state="consented"),
    ("POST", "family-screenings"): Operation(FAMILY_WRITE, scope=Scope.WRITE, family_state="referred"),
    # The randomise scope is a researcher's (not blinded); bob has it, but not for an OEI family.
    ("POST", "randomisations"): Operation(
        rule(others=FORBIDDEN, researcher_of_site=CREATED, researcher_of_other_site=NOT_FOUND),
        scope=Scope.RANDOMISE,
        family_state="ready",
        allocation_list=True,
    ),
    # The follow-up schedule: as the assessment's page (the site's assessors and researchers, the PI).
    ("GET", "family-assessments"): Operation(FAMILY_PAGE, family_state="randomised", allocation_list=True),
    # Recording an assessment: the site's assessors only; a researcher of the site holds the write scope but not the
    # role (403, as the page); another site's assessor or researcher finds no such family.
    ("POST", "family-assessment"): Operation(
        rule(
            others=FORBIDDEN,
            assessor_of_site=CREATED,
            assessor_of_other_site=NOT_FOUND,
            researcher_of_other_site=NOT_FOUND,
        ),
        scope=Scope.WRITE,
        family_state="randomised",
        allocation_list=True,
        holder="assessor_of_site",
    ),
    ("GET", "datasets"): Operation(DATASET_READERS, scope=Scope.EXPORT, holder="data_manager"),
    ("GET", "dataset-codebook"): Operation(DATASET_READERS, scope=Scope.EXPORT, holder="data_manager"),
    ("GET", "dataset"): Operation(DATASET_READERS, scope=Scope.EXPORT, holder="data_manager"),
    ("GET", "audit-log"): Operation(AUDIT_READERS, scope=Scope.EXPORT, holder="data_manager"),
    ("GET", "audit-log-csv"): Operation(AUDIT_READERS, scope=Scope.EXPORT, holder="data_manager"),
}
# Not operations of the API itself: its description, for scripts and for people (tests at the end of this file).
DESCRIPTION_URLS = {"schema", "docs"}
# The rest of /api/: a 404 problem (test_it_answers_an_address_that_names_no_operation_with_a_problem).
NOT_OPERATIONS = DESCRIPTION_URLS | {"not-found"}
# The operations that name a family by its study ID (in their path, or the body's).
STUDY_ID_OPERATIONS = {"family", "family-screenings", "randomisations", "family-assessments", "family-assessment"}
# What an operation's path parameters are filled with when the schema's paths are resolved.
SAMPLE_PATH_VALUES = {"study_id": "OEI-001", "months": "3", "key": "families"}


# ---------------------------------------------------------------------------------------------------------
# Completeness: the table against the schema and the URL resolver


def _api_url_names(patterns, inside: bool = False):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_url_names(pattern.url_patterns, inside or pattern.namespace == "api")
        elif isinstance(pattern, URLPattern) and inside:
            yield pattern.name


def schema_operations() -> set[tuple[str, str]]:
    """Every operation of the OpenAPI schema as (method, URL name)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = set()
    for path, item in schema["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda match: SAMPLE_PATH_VALUES.get(match.group(1), "x"), path)
        match = resolve(concrete)
        assert match.namespace == "api", path
        for method in item:
            found.add((method.upper(), match.url_name))
    return found


def test_it_has_a_row_for_every_operation():
    operations = schema_operations()
    missing = sorted(operations - set(OPERATIONS))
    assert not missing, f"These API operations have no row in api/tests/test_api_matrix.py OPERATIONS: {missing}"
    stale = sorted(set(OPERATIONS) - operations)
    assert not stale, f"OPERATIONS names operations that are not in the schema: {stale}"
    url_names = set(_api_url_names(get_resolver().url_patterns))
    unnamed = url_names - {name for _, name in OPERATIONS} - NOT_OPERATIONS
    assert not unnamed, f"API URLs with no operation in the schema nor a row here: {sorted(unnamed)}"


def test_it_gives_every_row_an_answer_for_every_role():
    for key, operation in OPERATIONS.items():
        assert set(operation.answers) == set(ROLES), key
        # The holder's call succeeds: the bad tokens' cases are refusals of a call that would succeed.
        assert operation.answers[operation.holder] in (OK, CREATED), key


# ---------------------------------------------------------------------------------------------------------
# The calls


@pytest.fixture
def caller(request, db):
    """caller(role, *scopes) -> an Api client with a token of the role's user (every scope its roles allow)."""

    def make(role: str, scopes: list[str] | None = None) -> Api:
        user = request.getfixturevalue(ROLES[role])
        return Api(key_of(user, scopes))

    return make


def key_of(user, scopes: list[str] | None = None) -> str:
    """A token of `user` with `scopes` (default: every scope its roles allow). A user with no role cannot make one:
    theirs was made while they were a Family Partner, a role they have lost since (the token stays; every call
    checks the roles again)."""
    if not roles_of(user):
        user.groups.add(Group.objects.get_or_create(name=Role.FAMILY_PARTNER)[0])
        key = token_create(user=User.objects.get(pk=user.pk), name="before the role ended", scopes=[Scope.READ]).key
        user.groups.clear()
        return key
    return token_create(user=user, name=f"matrix {uuid.uuid4().hex[:8]}", scopes=scopes or scopes_for(user)).key


def family_for(operation: Operation, request) -> Family | None:
    oei, alice = request.getfixturevalue("oei"), request.getfixturevalue("alice")
    if operation.allocation_list:
        lists.allocation_list_generate(site=oei, generated_by=request.getfixturevalue("dina"))
    if operation.family_state is None:
        return None
    if operation.family_state == "ready":
        return ready_to_randomise(oei, by=alice)
    if operation.family_state == "randomised":
        from randomization import services as randomisation

        family = ready_to_randomise(oei, by=alice)
        randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)
        return Family.objects.get(pk=family.pk)
    return family_in_state(operation.family_state, site=oei, by=alice)


def url_of(name: str, family: Family | None) -> str:
    if name in ("family", "family-screenings", "family-assessments"):
        assert family is not None
        return reverse(f"api:{name}", kwargs={"study_id": family.study_id})
    if name == "family-assessment":
        assert family is not None
        return reverse(f"api:{name}", kwargs={"study_id": family.study_id, "months": 3})
    if name == "dataset":
        return reverse("api:dataset", kwargs={"key": "families"})
    return reverse(f"api:{name}")


def body_of(name: str, family: Family | None) -> dict:
    """A valid body of each POST (for OEI, and the OEI family of the operation)."""
    if name == "families":
        return {
            "site": "OEI",
            "referral_date": days_ago(3).isoformat(),
            "referral_source": "child_welfare_caseworker",
            "parent_birth_years": [1990],
            "child_birth_dates": [days_ago(365 * 6).isoformat()],
            "identifiers": {"contact_name": "Ola Nordmann", "national_id_number": "", "phone": "", "address": ""},
            "submission_id": str(uuid.uuid4()),
        }
    assert family is not None
    if name == "family-screenings":
        return {
            "screened_on": days_ago(1).isoformat(),
            "involved_with_child_welfare": True,
            "harmful_circumstances": True,
            "struggle_areas": ["finances", "housing"],
            "submission_id": str(uuid.uuid4()),
        }
    if name == "randomisations":
        return {"study_id": family.study_id, "site": "OEI"}
    if name == "family-assessment":
        # Today is before the 3-month window: confirmed as outside it.
        return {
            "status": "completed",
            "done_on": days_ago(0).isoformat(),
            "mode": "phone",
            "questionnaires": ["SDQ"],
            "arm_guess": "unsure",
            "confirm_outside_window": True,
            "submission_id": str(uuid.uuid4()),
        }
    raise AssertionError(f"no body for {name}")


# What an allowed POST changed.
EFFECT = {
    "families": lambda before, after, family: after["Family"] == before["Family"] + 1,
    "family-screenings": lambda before, after, family: (
        after["statuses"][family.study_id] == FamilyStatus.ELIGIBLE and after["Screening"] == before["Screening"] + 1
    ),
    "randomisations": lambda before, after, family: (
        after["Allocation"] == before["Allocation"] + 1 and after["statuses"][family.study_id] == "randomised"
    ),
    "family-assessment": lambda before, after, family: (
        Assessment.objects.get(family=family, months=3).status == "completed"
        and after["history of Assessment"] == before["history of Assessment"] + 1
    ),
}


def call(api: Api, method: str, name: str, family: Family | None):
    url = url_of(name, family)
    return api.get(url) if method == "GET" else api.post(url, body_of(name, family))


def records_without_the_audit_trail() -> dict:
    """The trial's records (tests/test_access_matrix.py); the audit trail grows by the API's own record of each
    POST, refused or not, and is checked apart."""
    records = research_records()
    del records["audit events"]
    return records


def assert_is_problem(response, status: int) -> None:
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]


def _role_cases():
    for (method, name), operation in OPERATIONS.items():
        for role, expected in operation.answers.items():
            yield pytest.param(method, name, role, expected, id=f"{method} {name} as {role}")


@pytest.mark.parametrize(("method", "name", "role", "expected"), list(_role_cases()))
def test_it_answers_every_operation_as_the_table_says(request, caller, method, name, role, expected):
    operation = OPERATIONS[(method, name)]
    family = family_for(operation, request)
    api = caller(role)
    before = records_without_the_audit_trail()
    last_event = AuditEvent.objects.order_by("pk").last()

    response = call(api, method, name, family)

    assert response.status_code == expected, (response.status_code, response.content[:500])
    if expected >= 400:
        assert_is_problem(response, expected)
    if method != "POST":
        return
    after = records_without_the_audit_trail()
    if expected in (OK, CREATED):
        assert EFFECT[name](before, after, family)
    else:
        assert after == before, "a refused POST changed the trial's records"
    # Every POST, allowed or refused, is in the audit trail with the token's name.
    new_events = AuditEvent.objects.filter(pk__gt=last_event.pk if last_event else 0)
    api_calls = [event for event in new_events if event.kind == EventKind.API_CALL]
    assert len(api_calls) == 1, [event.kind for event in new_events]
    assert api_calls[0].details["status"] == expected


# ---------------------------------------------------------------------------------------------------------
# Bad tokens, on every operation


def expired_key(user, scopes) -> str:
    key = token_create(user=user, name=f"expired {uuid.uuid4().hex[:6]}", scopes=scopes).key
    past = timezone.now() - timedelta(days=40)
    ApiToken.objects.filter(prefix=key.split("_")[1]).update(created_at=past, expires_at=past + timedelta(days=30))
    return key


def revoked_key(user, scopes) -> str:
    new = token_create(user=user, name=f"revoked {uuid.uuid4().hex[:6]}", scopes=scopes)
    token_revoke(token=new.token, revoked_by=user)
    return new.key


def deactivated_key(user, scopes) -> str:
    key = token_create(user=user, name=f"left {uuid.uuid4().hex[:6]}", scopes=scopes).key
    user.is_active = False
    user.save(update_fields=["is_active"])
    return key


# (name, how the Authorization header is made from the holder's user and scopes; None: no header)
TOKEN_CASES = {
    "no token": lambda user, scopes: None,
    "malformed": lambda user, scopes: "Bearer two parts",
    "another scheme": lambda user, scopes: "Token " + token_create(user=user, name="other", scopes=scopes).key,
    "unknown key": lambda user, scopes: f"Bearer fpt_0badf00d_{'x' * 43}",
    "right prefix, wrong secret": lambda user, scopes: (
        "Bearer " + token_create(user=user, name="wrong", scopes=scopes).key[:-4] + "abcd"
    ),
    "expired": lambda user, scopes: "Bearer " + expired_key(user, scopes),
    "revoked": lambda user, scopes: "Bearer " + revoked_key(user, scopes),
    "deactivated user": lambda user, scopes: "Bearer " + deactivated_key(user, scopes),
}


def _token_cases():
    for method, name in OPERATIONS:
        for case in TOKEN_CASES:
            yield pytest.param(method, name, case, id=f"{method} {name} with {case}")


def client_with(header: str | None) -> Api:
    api = Api(None)
    if header is not None:
        api.headers["HTTP_AUTHORIZATION"] = header
    return api


@pytest.mark.parametrize(("method", "name", "case"), list(_token_cases()))
def test_it_refuses_every_operation_without_a_live_token(request, method, name, case):
    operation = OPERATIONS[(method, name)]
    family = family_for(operation, request)
    user = request.getfixturevalue(ROLES[operation.holder])
    api = client_with(TOKEN_CASES[case](user, scopes_for(user)))
    before = records_without_the_audit_trail()
    events_before = AuditEvent.objects.count()

    response = call(api, method, name, family)

    assert response.status_code == UNAUTHORISED, (response.status_code, response.content[:300])
    assert_is_problem(response, UNAUTHORISED)
    assert response["WWW-Authenticate"] == "Bearer"
    assert records_without_the_audit_trail() == before
    # Nobody is known: nothing to write in the audit trail.
    assert AuditEvent.objects.count() == events_before


def _scope_cases():
    for (method, name), operation in OPERATIONS.items():
        if operation.scope != Scope.READ:
            yield pytest.param(method, name, id=f"{method} {name} with a read-only token")


@pytest.mark.parametrize(("method", "name"), list(_scope_cases()))
def test_it_refuses_an_operation_outside_the_tokens_scopes(request, caller, method, name):
    operation = OPERATIONS[(method, name)]
    family = family_for(operation, request)
    read_only = caller(operation.holder, [str(Scope.READ)])
    before = records_without_the_audit_trail()

    response = call(read_only, method, name, family)

    assert response.status_code == FORBIDDEN
    assert_is_problem(response, FORBIDDEN)
    assert operation.scope in json.loads(response.content)["detail"]
    assert records_without_the_audit_trail() == before


def test_it_has_a_scope_case_for_every_scope_that_is_not_read():
    assert {operation.scope for operation in OPERATIONS.values()} - {Scope.READ} == {
        Scope.WRITE,
        Scope.RANDOMISE,
        Scope.EXPORT,
    }


# ---------------------------------------------------------------------------------------------------------
# Another site's family is told apart from no family at all by nobody


@pytest.mark.parametrize(("method", "name"), [key for key in OPERATIONS if key[1] in STUDY_ID_OPERATIONS])
def test_it_answers_another_sites_family_as_a_family_that_does_not_exist(request, caller, method, name):
    operation = OPERATIONS[(method, name)]
    family = family_for(operation, request)
    bob = caller("researcher_of_other_site")
    answers = []
    for study_id in (family.study_id, "OEI-999"):
        stand_in = Family(study_id=study_id, site=family.site)
        if name == "randomisations":
            answers.append(bob.post(reverse("api:randomisations"), {"study_id": study_id, "site": "OEI"}))
        else:
            answers.append(call(bob, method, name, stand_in))
    first, second = answers
    assert first.status_code == second.status_code == NOT_FOUND
    strip = lambda response: json.loads(response.content.decode().replace(family.study_id, "OEI-999"))  # noqa: E731
    assert strip(first) == strip(second)


# ---------------------------------------------------------------------------------------------------------
# The schema and its documentation


@pytest.mark.parametrize("role", list(ROLES))
def test_it_serves_the_schema_to_every_token(caller, role):
    response = caller(role).get(reverse("api:schema"))
    assert response.status_code == OK
    assert b"openapi" in response.content


def test_it_refuses_the_schema_without_a_token_or_a_session(db):
    response = Client().get(reverse("api:schema"))
    assert response.status_code == UNAUTHORISED


@pytest.mark.parametrize("role", list(ROLES))
def test_it_serves_the_schema_and_the_docs_to_everyone_signed_in(db, client, request, role):
    client.force_login(request.getfixturevalue(ROLES[role]))
    assert client.get(reverse("api:schema")).status_code == OK
    docs = client.get(reverse("api:docs"))
    assert docs.status_code == OK
    assert b"swagger-ui" in docs.content
    # Swagger UI's start script (a file, for the Content-Security-Policy) loads the schema.
    script = client.get(reverse("api:docs"), {"script": ""})
    assert script.status_code == OK
    assert reverse("api:schema").encode() in script.content


def test_it_sends_anonymous_readers_of_the_docs_to_the_login(client, db):
    response = client.get(reverse("api:docs"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "next=" in response.url


def test_it_allocates_nothing_when_a_randomisation_is_refused_for_lack_of_a_scope(request, caller, oei, alice, dina):
    lists.allocation_list_generate(site=oei, generated_by=dina)
    family = ready_to_randomise(oei, by=alice)
    response = caller("researcher_of_site", [str(Scope.READ), str(Scope.WRITE)]).post(
        reverse("api:randomisations"), {"study_id": family.study_id, "site": "OEI"}
    )
    assert response.status_code == FORBIDDEN
    assert Allocation.objects.count() == 0
    assert Family.objects.get(pk=family.pk).status == FamilyStatus.CONSENTED


@pytest.mark.parametrize(
    "path", ["/api/v1/families/OEI/001/", "/api/v1/nothing/", "/api/v2/me/", "/api/v1/me", "/api/"]
)
def test_it_answers_an_address_that_names_no_operation_with_a_problem(caller, path):
    for api in (caller("researcher_of_site"), Api(None)):
        for response in (api.get(path), api.post(path, {"study_id": "OEI-001"})):
            assert response.status_code == NOT_FOUND, (path, response.status_code)
            assert_is_problem(response, NOT_FOUND)
