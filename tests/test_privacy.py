"""Direct identifiers are encrypted at rest and shown only to the family's site researchers; nothing is
deleted; logins lock after repeated failures; idle sessions end; forms need their CSRF token.

(docs/trial-rules.md, "Privacy": names, national identity numbers, phone and address live apart from research data,
encrypted with a key from the environment, visible only to the family's site researchers, and never appear
in exports, logs, notifications or reports.)
"""

import logging
import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import ProtectedError
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from families import services
from families.models import (
    Consent,
    Family,
    FamilyIdentity,
    FamilyStatus,
    ReferralSource,
    Screening,
    Withdrawal,
)
from families.tests.factories import days_ago, screen_family
from trial.roles import Role
from trial.tests.factories import PASSWORD, UserFactory

NAME = "Ingrid Haugen-Solbakk"
NATIONAL_ID = "15038540189"  # valid check digits
PHONE = "98765432"
NEW_PHONE = "47112233"
ADDRESS = "Storgata 12, 3300 Hokksund"
OTHER_MEMBERS = "Per Solbakk, Lise Solbakk"
IDENTIFIERS = (NAME, NATIONAL_ID, PHONE, ADDRESS, OTHER_MEMBERS)


@pytest.fixture
def lars(lar):
    """A blinded outcome assessor at Larvik."""
    return UserFactory(username="lars", roles=[Role.OUTCOME_ASSESSOR], sites=[lar])


@pytest.fixture
def nora(db):
    """A user whose account has no role in the trial yet."""
    return UserFactory(username="nora")


def register_identified_family(*, site, by) -> Family:
    return services.family_register(
        site=site,
        referral_date=days_ago(30),
        referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
        parent_birth_years=[1988],
        child_birth_dates=[days_ago(365 * 6)],
        identifiers=services.Identifiers(
            contact_name=NAME,
            national_id_number=NATIONAL_ID,
            phone=PHONE,
            address=ADDRESS,
            other_members=OTHER_MEMBERS,
        ),
        registered_by=by,
        token=uuid.uuid4(),
    )


@pytest.fixture
def family(oei, alice) -> Family:
    """A family at Øvre Eiker with every direct identifier filled in, screened eligible, consented and
    withdrawn (so that it has a record of every kind)."""
    registered = register_identified_family(site=oei, by=alice)
    screen_family(registered, by=alice)
    consent = services.family_record_consent(
        family=registered,
        decided_on=days_ago(10),
        form_version="v1",
        obtained_by=alice,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    services.family_withdraw(
        family=consent.family,
        withdrawn_on=days_ago(5),
        reason="family_request",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    return Family.objects.get(pk=registered.pk)


def shown_identifiers(text: str) -> list[str]:
    return [value for value in IDENTIFIERS if value in text]


def registration_data(site, **changes) -> dict:
    data = {
        "token": str(uuid.uuid4()),
        "site": site.pk,
        "referral_date": days_ago(3).isoformat(),
        "referral_source": "child_welfare_caseworker",
        "contact_name": NAME,
        "national_id_number": NATIONAL_ID,
        "phone": PHONE,
        "address": ADDRESS,
        "other_members": OTHER_MEMBERS,
        "parents-TOTAL_FORMS": 1,
        "parents-INITIAL_FORMS": 0,
        "parents-0-birth_year": 1988,
        "children-TOTAL_FORMS": 1,
        "children-INITIAL_FORMS": 0,
        "children-0-birth_date": days_ago(365 * 6).isoformat(),
    }
    return data | changes


# ---------------------------------------------------------------------------------------------------------
# (a) Encrypted at rest


def raw_rows(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (our own table names)
        return "\n".join(" | ".join(str(value) for value in row) for row in cursor.fetchall())


@pytest.mark.parametrize("table", ["families_familyidentity", "families_historicalfamilyidentity"])
def test_it_stores_direct_identifiers_only_as_ciphertext(family, table):
    raw = raw_rows(table)

    assert raw, f"{table} is empty"
    assert shown_identifiers(raw) == []
    assert "gAAAAA" in raw  # Fernet tokens: the values are there, encrypted


def test_it_reads_the_encrypted_identifiers_back(family):
    identity = FamilyIdentity.objects.get(family=family)
    assert (identity.contact_name, identity.national_id_number, identity.phone) == (NAME, NATIONAL_ID, PHONE)
    assert (identity.address, identity.other_members) == (ADDRESS, OTHER_MEMBERS)
    assert identity.history.get().contact_name == NAME


def test_it_keeps_identifiers_out_of_every_table_after_registering_through_the_page(client, alice, oei):
    client.force_login(alice)
    response = client.post(reverse("families:register"), registration_data(oei))
    assert response.status_code == 302
    client.get(response.url)

    leaking = {table: shown_identifiers(raw_rows(table)) for table in connection.introspection.table_names()}
    assert {table: found for table, found in leaking.items() if found} == {}


# ---------------------------------------------------------------------------------------------------------
# (b) The family page shows identifiers to the site's researchers only; (c) lists never do


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("alice", 200),  # researcher at OEI
        ("carol", 200),  # assessor at OEI
        ("paula", 200),  # PI
        ("bob", 404),  # researcher at LAR
        ("lars", 404),  # assessor at LAR
        ("frank", 404),  # Family Partner
        ("dina", 404),  # data manager
        ("adam", 404),  # administrator
        ("nora", 404),  # no role
    ],
)
def test_it_shows_identifiers_on_the_family_page_only_to_the_sites_researchers(request, client, family, role, status):
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse("families:detail", args=[family.study_id]))

    assert response.status_code == status
    shown = shown_identifiers(response.content.decode())
    if role == "alice":
        assert shown == list(IDENTIFIERS)
    else:
        assert shown == []


@pytest.mark.parametrize("role", ["carol", "paula", "bob", "frank", "dina", "adam", "nora"])
def test_it_never_opens_the_identifiers_form_to_anyone_else(request, client, family, role):
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse("families:identifiers", args=[family.study_id]))

    assert response.status_code in (403, 404)
    assert shown_identifiers(response.content.decode()) == []


@pytest.mark.parametrize("role", ["alice", "carol", "paula"])
def test_it_never_shows_identifiers_on_the_family_list(request, client, family, role):
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse("families:list"))

    assert response.status_code == 200
    assert family.study_id in response.content.decode()
    assert shown_identifiers(response.content.decode()) == []


def test_it_does_not_find_a_family_by_its_name(client, family, alice):
    client.force_login(alice)

    response = client.get(reverse("families:list"), {"q": NAME.split()[0]})

    assert response.context["form"].is_valid()

    assert list(response.context["page"]) == []


# ---------------------------------------------------------------------------------------------------------
# (d) The admin: no identifiers on any page, and no page for identifiers


def test_it_shows_no_identifiers_on_any_admin_list(client, adam, family):
    client.force_login(adam)
    checked = []
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        assert shown_identifiers(response.content.decode()) == [], url
        checked.append(url)
    assert reverse("admin:families_family_changelist") in checked


@pytest.mark.parametrize("model", [Family, Screening, Consent, Withdrawal])
def test_it_shows_no_identifiers_on_the_admin_pages_of_a_research_record(client, adam, family, model):
    client.force_login(adam)
    record = model.objects.get(pk=family.pk) if model is Family else model.objects.get(family=family)
    name = f"admin:families_{model._meta.model_name}"
    for url in (
        reverse(f"{name}_change", args=[record.pk]),
        reverse(f"{name}_history", args=[record.pk]),
        reverse(f"{name}_simple_history", args=[record.pk, record.history.earliest("history_date").history_id]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert shown_identifiers(response.content.decode()) == [], url


def test_it_finds_no_family_by_name_in_the_admin_search(client, adam, family):
    client.force_login(adam)

    response = client.get(reverse("admin:families_family_changelist"), {"q": NAME})

    assert response.context["cl"].result_count == 0


def test_it_has_no_admin_page_for_identifiers(client, adam, family):
    assert FamilyIdentity not in admin.site._registry
    assert FamilyIdentity.history.model not in admin.site._registry
    with pytest.raises(NoReverseMatch):
        reverse("admin:families_familyidentity_changelist")
    client.force_login(adam)
    assert client.get("/admin/families/familyidentity/").status_code == 404
    assert client.get(f"/admin/families/familyidentity/{family.identity.pk}/change/").status_code == 404


# ---------------------------------------------------------------------------------------------------------
# (e) Nothing is deleted, and the admin changes nothing


RESEARCH_RECORDS = [Family, Screening, Consent, Withdrawal]


def record_of(model, family: Family):
    return family if model is Family else model.objects.get(family=family)


@pytest.mark.parametrize("model", RESEARCH_RECORDS)
def test_it_never_offers_deletion_in_the_admin(client, adam, family, model):
    request = RequestFactory().get("/admin/")
    request.user = adam
    record = record_of(model, family)
    assert admin.site._registry[model].has_delete_permission(request) is False
    assert admin.site._registry[model].has_delete_permission(request, record) is False

    client.force_login(adam)
    url = reverse(f"admin:families_{model._meta.model_name}_delete", args=[record.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    changelist = reverse(f"admin:families_{model._meta.model_name}_changelist")
    client.post(changelist, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})

    assert model.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize("model", RESEARCH_RECORDS)
def test_it_refuses_to_change_a_research_record_from_the_admin_history(client, adam, family, model):
    """simple-history's "revert" form saves on POST whenever one may view: research records change
    only through the services, which keep the life cycle and the audit trail consistent."""
    record = record_of(model, family)
    earliest = record.history.earliest("history_date")
    url = reverse(f"admin:families_{model._meta.model_name}_simple_history", args=[record.pk, earliest.history_id])
    client.force_login(adam)
    form = client.get(url).context["adminform"].form
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    if model is Family:
        data["status"] = FamilyStatus.REFERRED  # the earliest version: as if never screened nor withdrawn
    if model is Screening:  # an eligible, consented family's screening turned "not eligible"
        data |= {"harmful_circumstances": False, "eligible": False, "failed_criteria": '["harmful_circumstances"]'}
    history_before = record.history.count()

    response = client.post(url, data)

    assert Family.objects.get(pk=family.pk).status == FamilyStatus.WITHDRAWN
    assert record.history.count() == history_before, f"the admin saved a {model.__name__} (an audited change)"
    assert response.status_code == 403


def test_it_refuses_to_delete_a_registered_family(family):
    with pytest.raises(ProtectedError):
        family.delete()
    with pytest.raises(ProtectedError):
        Family.objects.filter(pk=family.pk).delete()
    with pytest.raises(ProtectedError):
        FamilyIdentity.objects.get(family=family).family.delete()
    assert Family.objects.filter(pk=family.pk).exists()


def test_it_refuses_to_delete_a_family_that_has_a_screening_even_without_identifiers(oei, alice):
    # Made without the services, so the family has a screening and nothing else.
    family = Family.objects.create(
        site=oei,
        number=900,
        study_id="OEI-900",
        referral_date=days_ago(30),
        referral_source=ReferralSource.OTHER,
        registered_by=alice,
        registration_token=uuid.uuid4(),
    )
    Screening.objects.create(
        family=family,
        screened_on=days_ago(20),
        screened_by=alice,
        involved_with_child_welfare=False,
        harmful_circumstances=False,
        eligible=False,
        failed_criteria=["child_welfare"],
        submission_token=uuid.uuid4(),
    )
    with pytest.raises(ProtectedError):
        family.delete()
    assert Family.objects.filter(pk=family.pk).exists()


def test_it_refuses_to_delete_a_site_or_a_user_that_families_refer_to(family, oei, alice):
    with pytest.raises(ProtectedError):
        oei.delete()
    with pytest.raises(ProtectedError):
        alice.delete()


# ---------------------------------------------------------------------------------------------------------
# (f) Logs


def browse_a_family_into_the_trial(client, oei, alice, carol, paula, bob) -> Family:
    """Register a family through the page (after one invalid try), then open its pages as several users."""
    client.force_login(alice)
    invalid = client.post(reverse("families:register"), registration_data(oei, national_id_number="15038540188"))
    assert invalid.status_code == 200 and invalid.context["form"].errors
    response = client.post(reverse("families:register"), registration_data(oei))
    assert response.status_code == 302
    family = Family.objects.get()
    client.get(reverse("families:detail", args=[family.study_id]))
    client.get(reverse("families:identifiers", args=[family.study_id]))
    client.get(reverse("families:list"))
    for user in (carol, paula, bob):
        client.force_login(user)
        client.get(reverse("families:detail", args=[family.study_id]))
    return family


LOGGERS = ["", "django", "django.request", "django.db.backends", "django.template", "django.security"]


@pytest.fixture
def debug_logs(caplog):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def everything_logged(caplog) -> str:
    """Every record's message, arguments and traceback, as a handler would write them."""
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(repr(getattr(record, "params", "")))
        parts.append(repr(getattr(record, "sql", "")))
    return "\n".join(parts)


def test_it_writes_no_identifiers_to_the_logs(client, debug_logs, oei, alice, carol, paula, bob):
    assert settings.DEBUG is False

    browse_a_family_into_the_trial(client, oei, alice, carol, paula, bob)

    logged = everything_logged(debug_logs)
    assert "Not Found: /families/OEI-001/" in logged  # bob's visit: the logs were captured
    assert shown_identifiers(logged) == []


def test_it_logs_only_ciphertext_of_identifiers_even_with_sql_logging_on(
    client, debug_logs, settings, oei, alice, carol, paula, bob
):
    # With DEBUG on, django.db.backends logs every statement with its parameters. The identifiers are
    # encrypted before they become parameters, so the log holds ciphertext (never do this in production).
    settings.DEBUG = True

    browse_a_family_into_the_trial(client, oei, alice, carol, paula, bob)

    sql = [r for r in debug_logs.records if r.name == "django.db.backends" and "families_familyidentity" in r.sql]
    assert any(r.sql.startswith("INSERT") and "gAAAAA" in r.getMessage() for r in sql)
    assert shown_identifiers(everything_logged(debug_logs)) == []


# ---------------------------------------------------------------------------------------------------------
# (g) The timeline names changed identifiers, never their values


def timeline_html(response) -> str:
    match = re.search(r"<ol class=\"timeline\" data-timeline>(.*?)</ol>", response.content.decode(), re.S)
    assert match, "the family page has no timeline"
    return match.group(1)


def test_it_shows_that_the_phone_changed_but_not_from_what_to_what(client, family, alice, carol, paula):
    identity = FamilyIdentity.objects.get(family=family)
    identity.phone = NEW_PHONE
    identity._history_user = alice
    identity.save()

    client.force_login(alice)
    response = client.get(reverse("families:detail", args=[family.study_id]))

    timeline = timeline_html(response)
    assert "Direct identifiers changed" in timeline
    changed = next(event for event in response.context["timeline"] if event.what == "Direct identifiers changed")
    assert [(change.label, change.old, change.new) for change in changed.changes] == [("phone", "", "(hidden)")]
    assert PHONE not in timeline and NEW_PHONE not in timeline
    assert shown_identifiers(timeline) == []
    for user in (carol, paula):
        client.force_login(user)
        page = client.get(reverse("families:detail", args=[family.study_id])).content.decode()
        assert "Direct identifiers changed" in page
        assert PHONE not in page and NEW_PHONE not in page


# ---------------------------------------------------------------------------------------------------------
# (h) Login lockout


def log_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_it_locks_a_username_out_after_repeated_wrong_passwords(client, alice, bob):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "alice", "wrong-password")

    response = log_in(client, "alice", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Only that username is locked: bob, at the same address, still gets in.
    assert log_in(client, "bob", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_it_lets_a_user_in_who_mistyped_fewer_times_than_the_limit(client, alice):
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "alice", "wrong-password").status_code == 200

    response = log_in(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_it_answers_a_username_longer_than_any_account_with_a_form_error(client, alice):
    """Axes records a failed login's username in a column of 255 characters: a longer one was a 500."""
    from axes.models import AccessAttempt

    response = log_in(client, "a" * 256, "wrong-password")

    assert response.status_code == 200
    assert response.context["form"].errors["username"]
    assert AccessAttempt.objects.count() == 0
    assert log_in(client, "alice", PASSWORD).status_code == 302


# Behind the reverse proxy every request comes from the proxy's address; the client's is in X-Forwarded-For,
# which the proxy appends to (docs/deployment.md). REMOTE_ADDR below is the proxy's.
PROXY = "10.0.0.2"


def log_in_from(client, address: str, username: str, password: str, forwarded_for: str | None = None):
    return client.post(
        reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded_for if forwarded_for is not None else address,
    )


def test_it_does_not_lock_a_user_out_for_another_address_behind_the_trusted_proxy(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in_from(client, "198.51.100.7", "alice", "wrong-password")

    assert log_in_from(client, "198.51.100.7", "alice", PASSWORD).status_code == 429
    response = log_in_from(client, "203.0.113.20", "alice", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_it_takes_the_address_the_trusted_proxy_added_not_one_the_client_forged(client, alice, settings):
    """A client may send its own X-Forwarded-For; the proxy appends the address it saw, so the last one counts."""
    settings.TRUSTED_PROXY_COUNT = 1
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in_from(client, "", "alice", "wrong-password", forwarded_for=f"192.0.2.{attempt}, 198.51.100.7")

    response = log_in_from(client, "", "alice", PASSWORD, forwarded_for="192.0.2.99, 198.51.100.7")

    assert response.status_code == 429


def test_it_ignores_a_forged_forwarded_address_without_a_trusted_proxy(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in_from(client, f"198.51.100.{attempt}", "alice", "wrong-password")

    # Every failure came from the same address (REMOTE_ADDR), whatever the header said: alice is locked there.
    assert log_in_from(client, "203.0.113.20", "alice", PASSWORD).status_code == 429


def test_it_falls_back_to_the_connections_address_when_the_proxys_header_is_missing_or_garbled(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for forwarded_for in ("", "not-an-address", "unknown, \x00"):
        response = log_in_from(client, "", "alice", "wrong-password", forwarded_for=forwarded_for)
        assert response.status_code == 200
    from axes.models import AccessAttempt

    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [PROXY]


# ---------------------------------------------------------------------------------------------------------
# (i) Idle sessions end


def test_it_ends_sessions_after_thirty_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_it_logs_out_a_session_whose_expiry_has_passed(client, alice):
    client.force_login(alice)
    assert client.get(reverse("families:list")).status_code == 200
    session = client.session
    session.set_expiry(timezone.now() - timedelta(seconds=1))
    session.save()

    response = client.get(reverse("families:list"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('families:list')}"


def test_it_renews_the_session_on_every_request(client, alice):
    client.force_login(alice)
    key = client.session.session_key
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=1))

    assert client.get(reverse("families:list")).status_code == 200

    remaining = Session.objects.get(pk=key).expire_date - timezone.now()
    assert remaining > timedelta(minutes=29)


# ---------------------------------------------------------------------------------------------------------
# (j) CSRF


def test_it_refuses_a_registration_without_its_csrf_token(alice, oei):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    response = browser.post(reverse("families:register"), registration_data(oei))

    assert response.status_code == 403
    assert Family.objects.count() == 0
    assert FamilyIdentity.objects.count() == 0


def test_it_accepts_a_registration_with_its_csrf_token(alice, oei):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    browser.get(reverse("families:register"))
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value

    response = browser.post(reverse("families:register"), registration_data(oei, csrfmiddlewaretoken=token))

    assert response.status_code == 302
    assert Family.objects.count() == 1


def test_it_refuses_an_identifier_change_without_its_csrf_token(family, alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    data = {"contact_name": "Someone Else", "national_id_number": "", "phone": "", "address": "", "other_members": ""}

    response = browser.post(reverse("families:identifiers", args=[family.study_id]), data)

    assert response.status_code == 403
    assert FamilyIdentity.objects.get(family=family).contact_name == NAME
