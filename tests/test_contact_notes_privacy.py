"""A contact's notes are for their author and the family's site researchers only.

(docs/trial-rules.md, "The Family Partner's work": notes are sensitive, visible to their author and site
researchers, never exported.) The PI sees that a contact happened, not its notes; another Family Partner of
the same site, a researcher of another site and a blinded assessor find no such family. The notes are encrypted
at rest (the history table too), never written to the logs, and the admin has no page for contacts.
"""

import html
import uuid

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import NoReverseMatch, reverse
from django.views.debug import SafeExceptionReporterFilter

from families.models import Family
from families.tests.factories import days_ago
from tests.test_privacy import debug_logs, everything_logged  # noqa: F401  (a fixture and its reader)
from visits import services as visits_services
from visits.models import Assignment, Contact, InterventionPeriod, PartnerProfile
from visits.tests.factories import assigned_family, log_contact, partner

NOTES = "Father spoke of his relapse last weekend; the children slept at their grandmother's"
NEW_NOTES = "Father spoke of his relapse; the children slept at their aunt's, not their grandmother's"
OTHER_PARTNERS_NOTES = "Mother cried when the caseworker called about the school report"


@pytest.fixture
def frank_profile(frank, oei) -> PartnerProfile:
    """frank (the conftest's Family Partner at OEI) set up by the administrator, with five slots."""
    return PartnerProfile.objects.create(user=frank, site=oei, capacity=5)


@pytest.fixture
def fiona(oei) -> PartnerProfile:
    """Another Family Partner at Øvre Eiker."""
    return partner(oei, "fiona")


@pytest.fixture
def family(oei, alice, frank, frank_profile) -> Family:
    """An intervention family at OEI assigned to frank, with one contact he logged with notes."""
    assigned = assigned_family(oei, researcher=alice, to=frank_profile)
    log_contact(assigned, by=frank, notes=NOTES)
    return assigned


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def work_page(family: Family) -> str:
    return reverse("visits:family", kwargs={"study_id": family.study_id})


def contact_form(**changes) -> dict:
    data = {
        "token": str(uuid.uuid4()),
        "contact_date": days_ago(0).isoformat(),
        "duration_quarters": 6,
        "kind": "home_visit",
        "elements": ["home_visitation", "parental_guidance"],
        "notes": NOTES,
    }
    return data | changes


# ---------------------------------------------------------------------------------------------------------
# Who reads them


@pytest.mark.parametrize(
    ("viewer", "status", "sees_the_contact", "sees_the_notes"),
    [
        ("frank", 200, True, True),  # the author, the family's Family Partner
        ("alice", 200, True, True),  # a researcher of the family's site
        ("paula", 200, True, False),  # the PI: the contact, not its notes
        ("fiona", 404, False, False),  # another Family Partner of the same site, not the family's
        ("bob", 404, False, False),  # a researcher of another site
        ("carol", 404, False, False),  # a blinded outcome assessor of the site
    ],
)
def test_it_shows_the_notes_only_to_their_author_and_the_sites_researchers(
    request, client, family, fiona, viewer, status, sees_the_contact, sees_the_notes
):
    contact = Contact.objects.get(family=family)
    client.force_login(request.getfixturevalue(viewer) if viewer != "fiona" else fiona.user)

    response = client.get(work_page(family))

    assert response.status_code == status
    page = page_text(response)
    assert (f'data-contact="{contact.pk}"' in page) is sees_the_contact
    assert (NOTES in page) is sees_the_notes
    assert ("data-notes" in page) is sees_the_notes


def test_it_hides_the_notes_of_the_familys_former_partner_from_the_new_one(
    client, oei, alice, frank, frank_profile, fiona
):
    family = assigned_family(oei, researcher=alice, to=fiona)
    fionas_contact = log_contact(family, by=fiona.user, notes=OTHER_PARTNERS_NOTES)
    visits_services.family_assign(
        family=family, partner=frank_profile, started_on=days_ago(0), assigned_by=alice, reason="fiona moves"
    )

    client.force_login(frank)
    page = page_text(client.get(work_page(family)))

    assert f'data-contact="{fionas_contact.pk}"' in page
    assert OTHER_PARTNERS_NOTES not in page
    client.force_login(alice)
    assert OTHER_PARTNERS_NOTES in page_text(client.get(work_page(family)))


def test_it_shows_the_notes_in_the_correction_form_to_their_author_only(client, family, frank, alice, paula):
    url = reverse("visits:contact_edit", kwargs={"pk": Contact.objects.get(family=family).pk})
    client.force_login(frank)
    assert NOTES in page_text(client.get(url))

    for viewer in (alice, paula):
        client.force_login(viewer)
        response = client.get(url)
        assert response.status_code == 403
        assert NOTES not in page_text(response)


def test_it_shows_the_notes_on_no_other_page(client, family, frank, alice, paula):
    pages = {
        frank: [reverse("visits:partner_home")],
        alice: [
            reverse("families:list"),
            reverse("families:detail", kwargs={"study_id": family.study_id}),
            reverse("visits:caseload"),
            reverse("visits:dose"),
        ],
    }
    pages[paula] = pages[alice]
    for user, urls in pages.items():
        client.force_login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (user.username, url)
            assert family.study_id in page_text(response), url
            assert NOTES not in page_text(response), (user.username, url)


# ---------------------------------------------------------------------------------------------------------
# Encrypted at rest, the history too


def raw_notes(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT notes FROM {connection.ops.quote_name(table)}")  # noqa: S608 (our own table names)
        return [row[0] for row in cursor.fetchall()]


def log_and_correct_through_the_pages(client, family: Family, frank) -> Contact:
    """frank logs a contact with NOTES, then corrects its notes to NEW_NOTES, through the pages."""
    client.force_login(frank)
    logged = client.post(reverse("visits:contact_new", kwargs={"study_id": family.study_id}), contact_form())
    assert logged.status_code == 302
    contact = Contact.objects.filter(family=family).latest("pk")
    correction = contact_form(notes=NEW_NOTES, reason="")
    del correction["token"]
    corrected = client.post(reverse("visits:contact_edit", kwargs={"pk": contact.pk}), correction)
    assert corrected.status_code == 302
    return Contact.objects.get(pk=contact.pk)


@pytest.fixture
def waiting_for_frank(oei, alice, frank_profile) -> Family:
    """frank's family, with no contact yet."""
    return assigned_family(oei, researcher=alice, to=frank_profile)


@pytest.mark.parametrize("table", ["visits_contact", "visits_historicalcontact"])
def test_it_stores_the_notes_only_as_ciphertext(client, waiting_for_frank, frank, table):
    contact = log_and_correct_through_the_pages(client, waiting_for_frank, frank)

    stored = raw_notes(table)

    assert len(stored) == (1 if table == "visits_contact" else 2)
    assert all(value.startswith("gAAAAA") for value in stored)  # Fernet tokens: there, encrypted
    assert not [value for value in stored if NOTES in value or NEW_NOTES in value]
    assert contact.notes == NEW_NOTES
    assert [version.notes for version in contact.history.order_by("history_date")] == [NOTES, NEW_NOTES]


def test_it_keeps_the_notes_out_of_every_table(client, waiting_for_frank, frank):
    log_and_correct_through_the_pages(client, waiting_for_frank, frank)

    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (our own table names)
            rows = "\n".join(" | ".join(str(value) for value in row) for row in cursor.fetchall())
            if NOTES in rows or NEW_NOTES in rows:
                found[table] = rows
    assert found == {}


# ---------------------------------------------------------------------------------------------------------
# Never in the logs


def test_it_writes_no_notes_to_the_logs_even_with_sql_logging_on(
    client,
    debug_logs,  # noqa: F811
    settings,
    waiting_for_frank,
    frank,
    alice,
    paula,
    fiona,
    bob,
):
    # With DEBUG on, django.db.backends logs every statement with its parameters: the notes are encrypted
    # before they become parameters, so the log holds their ciphertext only.
    settings.DEBUG = True
    family = waiting_for_frank
    client.force_login(frank)
    invalid = client.post(
        reverse("visits:contact_new", kwargs={"study_id": family.study_id}), contact_form(elements=[])
    )
    assert invalid.status_code == 200 and invalid.context["form"].errors
    log_and_correct_through_the_pages(client, family, frank)
    for user in (alice, paula, fiona.user, bob):
        client.force_login(user)
        client.get(work_page(family))

    logged = everything_logged(debug_logs)
    statements = [r for r in debug_logs.records if r.name == "django.db.backends" and "visits_contact" in r.sql]
    assert any(r.sql.startswith("INSERT") and "gAAAAA" in r.getMessage() for r in statements)
    assert any(r.sql.startswith("UPDATE") and "gAAAAA" in r.getMessage() for r in statements)
    assert f"Not Found: {work_page(family)}" in logged  # fiona's and bob's visits: warnings were captured
    assert NOTES not in logged
    assert NEW_NOTES not in logged


def test_it_hides_the_notes_from_the_error_report_of_a_contact_form(client, waiting_for_frank, frank):
    """An error while saving a contact is reported with the request's POST data (Django's error e-mails and
    its debug page): the notes must be blanked there, as the identifiers' forms blank the identifiers."""
    family = waiting_for_frank
    client.force_login(frank)
    logged = client.post(reverse("visits:contact_new", kwargs={"study_id": family.study_id}), contact_form())
    contact = Contact.objects.get(family=family)
    correction = contact_form(notes=NEW_NOTES, reason="")
    del correction["token"]
    corrected = client.post(reverse("visits:contact_edit", kwargs={"pk": contact.pk}), correction)

    for response in (logged, corrected):
        assert response.status_code == 302
        reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
        assert reported["notes"] not in (NOTES, NEW_NOTES), response.wsgi_request.path
        assert reported["kind"] == "home_visit"  # what is no secret is reported as it was sent


# ---------------------------------------------------------------------------------------------------------
# Never in the admin


def test_it_has_an_admin_page_for_family_partners_only(client, adam, family):
    assert {model for model in admin.site._registry if model._meta.app_label == "visits"} == {PartnerProfile}
    for model in (Contact, Assignment, InterventionPeriod):
        assert model not in admin.site._registry
        assert model.history.model not in admin.site._registry
    with pytest.raises(NoReverseMatch):
        reverse("admin:visits_contact_changelist")
    client.force_login(adam)
    contact = Contact.objects.get(family=family)
    assert client.get("/admin/visits/contact/").status_code == 404
    assert client.get(f"/admin/visits/contact/{contact.pk}/change/").status_code == 404


def test_it_shows_no_notes_on_any_admin_page(client, adam, family, frank_profile):
    client.force_login(adam)
    urls = [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]
    urls += [
        reverse("admin:index"),
        reverse("admin:visits_partnerprofile_change", args=[frank_profile.pk]),
        reverse("admin:visits_partnerprofile_history", args=[frank_profile.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert NOTES not in page_text(response), url
    search = client.get(reverse("admin:visits_partnerprofile_changelist"), {"q": NOTES.split()[0]})
    assert NOTES not in page_text(search)
