"""Allocation concealment: before a list is unsealed, nobody sees an unused entry: not the data manager,
not the PI, not the administrator, not the logs, not a database reader, not an e-mail."""

import hashlib
import re

import pytest
from django.contrib import admin
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import translation

from randomization import lists, services
from randomization.models import AllocationEntry, Arm, ListSegment
from randomization.tests.factories import ready_to_randomise
from tests.test_privacy import debug_logs, everything_logged  # noqa: F401  (a fixture and its reader)

# An arm's code as a value (in an attribute, a cell or the canonical text), or its label in either language.
# "Ratio (intervention : control)" on a list's page names the arms; it does not show one.
ARM_PATTERN = re.compile(r"[\"'>= ](intervention|control)[\"'<\n]", re.IGNORECASE)


def arm_words() -> list[str]:
    words = []
    for language in ("en", "nb"):
        with translation.override(language):
            words.extend(str(label) for label in Arm.labels)
    return words


def shows_an_arm(text: str) -> bool:
    return bool(ARM_PATTERN.search(text)) or any(word in text for word in arm_words())


@pytest.fixture
def sealed_list(oei, dina):
    return lists.allocation_list_generate(site=oei, generated_by=dina)


def test_it_registers_no_randomisation_model_in_the_admin(client, adam, sealed_list):
    assert not [model for model in admin.site._registry if model._meta.app_label == "randomization"]
    client.force_login(adam)
    assert "randomization" not in client.get("/admin/").content.decode()
    assert client.get("/admin/randomization/allocationentry/").status_code == 404


@pytest.mark.parametrize("viewer", ["dina", "paula"])
@pytest.mark.parametrize("language", ["en", "nb"])
def test_it_shows_only_metadata_of_a_sealed_list(request, client, sealed_list, viewer, language):
    client.force_login(request.getfixturevalue(viewer))
    client.cookies["django_language"] = language
    pages = [
        reverse("randomization:lists"),
        reverse("randomization:list", args=["OEI"]),
        reverse("randomization:commitment", args=["OEI"]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not shows_an_arm(response.content.decode()), url
    assert sealed_list.commitment in client.get(reverse("randomization:list", args=["OEI"])).content.decode()
    assert client.get(reverse("randomization:canonical_text", args=["OEI"])).status_code == 404


def test_it_shows_the_entries_and_the_seeded_text_once_unsealed(client, sealed_list, dina, paula):
    lists.allocation_list_request_unsealing(allocation_list=sealed_list, reason="Recruitment closed", requested_by=dina)
    lists.allocation_list_approve_unsealing(allocation_list=sealed_list, approved_by=paula)
    client.force_login(dina)

    page = client.get(reverse("randomization:list", args=["OEI"])).content.decode()
    text = client.get(reverse("randomization:canonical_text", args=["OEI"])).content

    assert shows_an_arm(page)  # the detector works, and the unsealed list is open
    assert hashlib.sha256(text).hexdigest() == sealed_list.commitment
    assert ListSegment.objects.get().seed in text.decode()


def test_it_keeps_the_arms_and_the_seed_out_of_the_database_in_clear(sealed_list):
    with connection.cursor() as cursor:
        cursor.execute("SELECT sealed_arm FROM randomization_allocationentry")
        stored = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT seed FROM randomization_listsegment")
        stored_seed = cursor.fetchone()[0]
    assert AllocationEntry.objects.count() == sealed_list.length
    assert not shows_an_arm(stored) and "gAAAAA" in stored
    assert ListSegment.objects.get().seed not in stored_seed
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM randomization_historicallistsegment")
        assert ListSegment.objects.get().seed not in repr(cursor.fetchall())


def test_it_logs_no_arm_and_no_seed_while_generating_even_with_sql_logging_on(debug_logs, settings, oei, dina):  # noqa: F811
    settings.DEBUG = True

    lists.allocation_list_generate(site=oei, generated_by=dina)

    logged = everything_logged(debug_logs)
    assert "randomization_allocationentry" in logged  # the statements were captured
    assert not shows_an_arm(logged)
    assert ListSegment.objects.get().seed not in logged


@pytest.mark.django_db(transaction=True)  # the alert is queued when its claim commits
def test_it_tells_the_data_managers_about_an_empty_list_without_names_or_arms(oei, alice, dina, eager_celery):
    dina.email = "dina@example.org"
    dina.save()
    allocation_list = lists.allocation_list_generate(site=oei, generated_by=dina)
    families = [ready_to_randomise(oei, by=alice) for _ in range(allocation_list.length + 1)]
    for family in families[:-1]:
        services.family_randomise(family=family, confirmed_site=oei, randomised_by=alice)

    with pytest.raises(Exception) as refused:
        services.family_randomise(family=families[-1], confirmed_site=oei, randomised_by=alice)

    assert "used up" in str(refused.value)
    assert mail.outbox, "the data managers were told"
    for message in mail.outbox:
        assert message.to == ["dina@example.org"]
        assert not shows_an_arm(message.subject + message.body)
        assert "Kari Nordmann" not in message.body
