"""The audit log (reports/audit.py, reports/audit_pages.py): every change and every export, who may read it, its
filters, blinding, no identifier ever, the CSV export, and a constant number of queries."""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_history.models import registered_models

from families import services as family_services
from families.tests.factories import days_ago, family_in_state, register_family, screen_family
from reports.audit import AuditFilters, Cursor, audit_page, audit_rows, history_sources
from trial.events import record_event
from trial.models import AuditEvent, EventKind, RecruitmentState
from trial.roles import Role
from trial.services import site_set_recruitment_state
from trial.tests.factories import UserFactory
from visits.tests.factories import assigned_family, log_contact, partner

AUDIT = reverse("reports:audit")
AUDIT_CSV = reverse("reports:audit_csv")

# Values that must never leave the database through the audit log: identifiers and free text.
PLANTED = {
    "name": "Ingeborg Planted-Surname",
    "phone": "47110815",
    "address": "Plantedveien 13",
    "national_id": "01019012345",
    "withdrawal details": "PLANTED moved in with the grandmother",
    "contact notes": "PLANTED talked about the father's drinking",
}


def rows_of(client, **query) -> list[dict]:
    """The audit log page's rows, as {what, study_id, site, reason, fields, kind}."""
    response = client.get(AUDIT, query)
    assert response.status_code == 200
    page = response.context["page"]
    assert page is not None, response.context["form"].errors
    return [vars(row) for row in page.rows]


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def blinded_data_manager(db):
    """A data manager who is also an outcome assessor: blinded everywhere."""
    return UserFactory(username="blinda", roles=[Role.DATA_MANAGER, Role.OUTCOME_ASSESSOR])


@pytest.fixture
def trial_with_history(oei, lar, alice, bob, dina):
    """Changes in several apps (families, randomisation, visits, trial's sites) and a few audit events."""
    family = family_in_state("consented", site=oei, by=alice)
    family_services.family_update_identifiers(
        family=family,
        identifiers=family_services.Identifiers(
            contact_name=PLANTED["name"],
            national_id_number=PLANTED["national_id"],
            phone=PLANTED["phone"],
            address=PLANTED["address"],
        ),
        changed_by=alice,
    )
    family_services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(1),
        reason="moved_away",
        details=PLANTED["withdrawal details"],
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    fiona = partner(oei, "fiona")
    intervention = assigned_family(oei, researcher=alice, to=fiona)
    log_contact(intervention, by=fiona.user, notes=PLANTED["contact notes"])
    at_lar = register_family(site=lar, by=bob)
    site_set_recruitment_state(
        site=lar, state=RecruitmentState.PAUSED, reason="Waiting for two new Family Partners", changed_by=dina
    )
    record_event(kind=EventKind.UNSEALED_LIST_VIEWED, user=dina, site=oei, subject="OEI")
    record_event(kind=EventKind.RANDOMISATION_REFUSED, user=alice, site=oei, subject=family.study_id)
    return {"withdrawn": family, "intervention": intervention, "at_lar": at_lar}


# ---- who may read it


@pytest.mark.parametrize("who", ["paula", "dina", "adam"])
def test_it_opens_for_the_pi_data_managers_and_administrators(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(AUDIT).status_code == 200
    assert client.get(AUDIT_CSV).status_code == 200


def test_it_opens_for_a_superuser_without_a_role(client, db):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get(AUDIT).status_code == 200


def test_it_opens_for_an_administrator_who_is_not_a_superuser(client, db):
    client.force_login(UserFactory(username="ada", roles=[Role.ADMINISTRATOR]))
    assert client.get(AUDIT).status_code == 200


def test_it_refuses_an_account_without_a_role(client, db):
    client.force_login(UserFactory(username="nora"))
    assert client.get(AUDIT).status_code == 403


@pytest.mark.parametrize("who", ["alice", "carol", "frank"])
def test_it_refuses_researchers_partners_and_assessors(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(AUDIT).status_code == 403
    assert client.get(AUDIT_CSV).status_code == 403
    assert not AuditEvent.objects.filter(kind=EventKind.AUDIT_LOG_EXPORTED).exists()


def test_it_sends_anonymous_visitors_to_the_login(client, db):
    response = client.get(AUDIT)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_it_shows_the_menu_item_only_to_those_who_may_read_it(client, alice, dina):
    client.force_login(dina)
    assert f'href="{AUDIT}"' in client.get(reverse("trial_settings")).content.decode()
    client.force_login(alice)
    assert f'href="{AUDIT}"' not in client.get(reverse("families:list")).content.decode()


# ---- what it holds


def test_it_finds_every_history_table_through_simple_historys_registry():
    keys = {source.key for source in history_sources()}
    # Every table simple-history keeps belongs to the project's apps (none to an installed package), and each is read.
    assert keys == {model._meta.label_lower for model in registered_models.values()}
    assert {
        "trial.site",
        "trial.trialsettings",
        "families.family",
        "families.familyidentity",
        "randomization.allocation",
        "visits.contact",
        "followups.assessment",
        "followups.blindingguess",
    } <= keys
    by_key = {source.key: source for source in history_sources()}
    assert by_key["followups.blindingguess"].study_id_path == "assessment__family__study_id"
    assert by_key["families.parent"].site_path == "family__site"
    assert by_key["randomization.listsegment"].site_path == "allocation_list__site"
    assert by_key["trial.trialsettings"].study_id_path is None


def test_it_shows_changes_of_several_apps_and_the_events_newest_first(client, paula, trial_with_history):
    client.force_login(paula)
    rows = rows_of(client)
    whens = [row["when"] for row in rows]
    assert whens == sorted(whens, reverse=True)
    kinds = {row["kind"] for row in rows}
    assert {
        "families.family",
        "families.withdrawal",
        "randomization.allocation",
        "visits.contact",
        "followups.assessment",
        "trial.site",
        "event:randomisation_refused",
        "event:unsealed_list_viewed",
    } <= kinds
    withdrawn = trial_with_history["withdrawn"]
    change = next(
        row
        for row in rows
        if row["kind"] == "families.family" and "status" in row["fields"] and row["study_id"] == withdrawn.study_id
    )
    assert change["who"] == "alice"
    assert change["what"] == "Family changed"
    assert change["site"] == "OEI"
    identifiers = next(row for row in rows if row["kind"] == "families.familyidentity" and row["fields"])
    assert set(identifiers["fields"]) == {"parent's full name", "national identity number", "phone", "address"}
    refused = next(row for row in rows if row["kind"] == "event:randomisation_refused")
    assert (refused["what"], refused["study_id"], refused["site"], refused["who"]) == (
        "Randomisation refused",
        withdrawn.study_id,
        "OEI",
        "alice",
    )


def test_it_shows_a_sites_pause_with_its_reason_and_the_fields_it_changed(client, paula, dina, lar, trial_with_history):
    site_set_recruitment_state(site=lar, state=RecruitmentState.CLOSED, reason="Target reached", changed_by=paula)
    client.force_login(dina)
    rows = rows_of(client, site="LAR", kind="trial.site")
    assert [(row["what"], row["who"], row["reason"], row["fields"]) for row in rows] == [
        ("Site changed", "paula", "Target reached", ["recruitment", "reason for the recruitment state"]),
        # The sites are seeded by a migration, without a history row: the first change has nothing to diff against.
        ("Site changed", "dina", "Waiting for two new Family Partners", []),
    ]


def test_it_never_shows_an_identifier_or_free_text_on_the_page_or_in_the_csv(client, dina, trial_with_history):
    client.force_login(dina)
    page = client.get(AUDIT, {"family": trial_with_history["withdrawn"].study_id}).content.decode()
    page += client.get(AUDIT).content.decode()
    exported = "\n".join(",".join(line) for line in read_csv(client.get(AUDIT_CSV)))
    assert "national identity number" in page  # the field's label is shown, not its value
    for what, value in PLANTED.items():
        assert value not in page, what
        assert value not in exported, what


# ---- filters


def test_it_filters_by_user(client, paula, trial_with_history):
    client.force_login(paula)
    rows = rows_of(client, user="bob")
    assert rows and {row["who"] for row in rows} == {"bob"}
    assert {row["study_id"] for row in rows} == {trial_with_history["at_lar"].study_id}


def test_it_filters_by_family(client, paula, trial_with_history):
    client.force_login(paula)
    study_id = trial_with_history["withdrawn"].study_id
    rows = rows_of(client, family=study_id.lower())
    assert {row["study_id"] for row in rows} == {study_id}
    assert {"families.family", "families.parent", "families.screening", "families.withdrawal"} <= {
        row["kind"] for row in rows
    }
    assert "event:randomisation_refused" in {row["kind"] for row in rows}


def test_it_filters_by_site(client, paula, trial_with_history):
    client.force_login(paula)
    rows = rows_of(client, site="LAR")
    assert rows and {row["site"] for row in rows} == {"LAR"}
    assert {row["kind"] for row in rows} >= {"families.family", "trial.site"}


def test_it_filters_by_kind_of_record_and_of_event(client, paula, trial_with_history):
    client.force_login(paula)
    assert {row["kind"] for row in rows_of(client, kind="families.withdrawal")} == {"families.withdrawal"}
    events = rows_of(client, kind="event:unsealed_list_viewed")
    assert [(row["kind"], row["who"]) for row in events] == [("event:unsealed_list_viewed", "dina")]


def test_it_filters_by_date(client, paula, trial_with_history):
    client.force_login(paula)
    today = timezone.localdate()
    assert rows_of(client, date_from=today.isoformat(), date_to=today.isoformat())
    assert rows_of(client, date_to=(today - timedelta(days=1)).isoformat()) == []
    assert rows_of(client, date_from=(today + timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"user": "nobody-has-this-name"}, "user"),
        ({"family": "OEI 7; DROP TABLE"}, "family"),
        ({"site": "XYZ"}, "site"),
        ({"kind": "auth.user"}, "kind"),
        ({"date_from": "31.02.2026"}, "date_from"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"before": "yesterday~1~2"}, "__all__"),
        ({"before": "2026-01-01T00:00:00+00:00~999~1"}, "__all__"),
        ({"user": "x" * 5000}, "user"),
    ],
)
def test_it_shows_bad_filters_as_errors_never_a_500(client, paula, query, field):
    client.force_login(paula)
    for url in (AUDIT, AUDIT_CSV):
        response = client.get(url, query)
        assert response.status_code == 200, url
        assert response.context["form"].errors[field], url
    assert not AuditEvent.objects.filter(kind=EventKind.AUDIT_LOG_EXPORTED).exists()


FILTER_NAMES = ["user", "family", "site", "kind", "date_from", "date_to", "before"]
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["²", "9" * 5000, "\x00", "OEI-0\x00", "0000-00-00", "2026-13-40", "~~", "2026-01-01~0~-1"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(FILTER_NAMES), HOSTILE_TEXT, max_size=5))
def test_it_answers_any_filters_without_a_500(client, paula, query):
    client.force_login(paula)
    for url in (AUDIT, AUDIT_CSV):
        response = client.get(url, query)
        assert response.status_code == 200
        if response.streaming:
            b"".join(response.streaming_content)


# ---- blinding


ARM_REVEALING = {"randomization.allocation", "followups.blindingguess", "event:unsealed_list_viewed"}


def test_it_shows_a_blinded_data_manager_nothing_that_reveals_an_arm(
    client, dina, blinded_data_manager, trial_with_history
):
    client.force_login(dina)
    seen_by_dina = {row["kind"] for row in rows_of(client)}
    assert {
        "randomization.allocation",
        "visits.contact",
        "visits.assignment",
        "event:unsealed_list_viewed",
    } <= seen_by_dina

    client.force_login(blinded_data_manager)
    rows = rows_of(client)
    kinds = {row["kind"] for row in rows}
    assert "families.family" in kinds and "trial.site" in kinds
    assert not kinds & ARM_REVEALING
    assert not {kind for kind in kinds if kind.startswith("visits.")}
    assert not {kind for kind in kinds if kind.startswith("randomization.") and kind != "randomization.listsegment"}
    # The reasons and the times of a family's records are not shown either (a reason may speak of the intervention).
    assert all(row["reason"] == "" and row["date_only"] for row in rows if row["study_id"])
    # Asking for an arm-revealing kind by name finds nothing.
    assert rows_of(client, kind="randomization.allocation") == []
    assert rows_of(client, kind="event:unsealed_list_viewed") == []
    exported = read_csv(client.get(AUDIT_CSV))
    assert not any("Allocation" in line[2] or "Contact" in line[2] for line in exported[1:])


# ---- the CSV export


def test_it_exports_the_filtered_log_as_csv_and_records_the_export(client, paula, trial_with_history):
    client.force_login(paula)

    response = client.get(AUDIT_CSV, {"site": "LAR", "kind": "trial.site"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = read_csv(response)
    assert lines[0] == ["When", "User", "What", "Study ID", "Site", "Reason", "Fields changed"]
    assert [line[1:] for line in lines[1:]] == [
        [
            "dina",
            "Site changed",
            "",
            "LAR",
            "Waiting for two new Family Partners",
            "",
        ]
    ]
    event = AuditEvent.objects.get(kind=EventKind.AUDIT_LOG_EXPORTED)
    assert event.user == paula
    assert event.site.code == "LAR"
    assert event.details == {"filters": {"site": "LAR", "kind": "trial.site"}}


def test_it_exports_every_row_not_only_the_first_page(client, paula, oei, alice):
    for _n in range(3):
        register_family(site=oei, by=alice)
    client.force_login(paula)
    shown = len(rows_of(client))
    audit_total = len(list(audit_rows(viewer=paula, filters=AuditFilters(), chunk=2)))
    lines = read_csv(client.get(AUDIT_CSV))
    # Every row, and first the export itself (recorded before the file is written).
    assert len(lines) - 1 == shown + 1 == audit_total + 1
    assert lines[1][2] == "Audit log exported"


def test_it_neutralises_formulas_in_the_csv(client, paula, dina, oei):
    site_set_recruitment_state(site=oei, state=RecruitmentState.CLOSED, reason='=HYPERLINK("x")', changed_by=dina)
    client.force_login(paula)
    lines = read_csv(client.get(AUDIT_CSV, {"kind": "trial.site"}))
    assert lines[1][5] == '\'=HYPERLINK("x")'


def test_it_exports_in_the_pages_language(client, paula, oei, alice):
    register_family(site=oei, by=alice)
    client.force_login(paula)
    client.cookies["django_language"] = "nb"
    lines = read_csv(client.get(AUDIT_CSV))
    assert lines[0][3] == "Studie-ID"


# ---- pages and queries


def _history(families: int, *, oei, alice):
    for _n in range(families):
        family = register_family(site=oei, by=alice)
        screen_family(family, by=alice)
        record_event(kind=EventKind.RANDOMISATION_REFUSED, user=alice, site=oei, subject=family.study_id)


def _queries(client, **query) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(AUDIT, query)
    assert response.status_code == 200
    return len(captured)


def test_it_reads_a_page_in_the_same_number_of_queries_for_a_small_and_a_large_log(client, paula, oei, alice):
    client.force_login(paula)
    _history(2, oei=oei, alice=alice)
    small = _queries(client)
    _history(40, oei=oei, alice=alice)  # several pages: 40 families, 6 records each, and their events
    large = _queries(client)
    older = client.get(AUDIT).context["older"]
    assert older is not None
    deeper = _queries(client, before=str(older))
    assert small == large == deeper
    # Two per history table at most (the rows and the previous rows their changes are diffed against), the events,
    # and the request's own (session, user, roles, menu).
    assert large <= 2 * len(history_sources()) + 12


def test_it_pages_through_every_row_once(paula, oei, alice):
    _history(6, oei=oei, alice=alice)
    everything = audit_page(viewer=paula, filters=AuditFilters(), size=1000).rows
    seen = []
    cursor: Cursor | None = None
    while True:
        page = audit_page(viewer=paula, filters=AuditFilters(), cursor=cursor, size=7)
        seen += [(row.source, row.pk) for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = Cursor.parse(str(page.next_cursor))
    assert seen == [(row.source, row.pk) for row in everything]
    assert len(set(seen)) == len(seen) == len(everything)


def test_it_streams_the_same_rows_in_the_same_order_as_the_pages(paula, dina, oei, lar, alice, bob):
    _history(4, oei=oei, alice=alice)
    register_family(site=lar, by=bob)
    site_set_recruitment_state(site=lar, state=RecruitmentState.PAUSED, reason="Leave", changed_by=dina)
    for filters in (AuditFilters(), AuditFilters(site=oei), AuditFilters(kind="families.family")):
        paged = audit_page(viewer=paula, filters=filters, size=1000).rows
        streamed = list(audit_rows(viewer=paula, filters=filters, chunk=3))
        assert [(row.source, row.pk, row.fields, row.reason) for row in streamed] == [
            (row.source, row.pk, row.fields, row.reason) for row in paged
        ]
        assert paged
