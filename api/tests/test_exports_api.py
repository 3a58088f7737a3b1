"""The analysis datasets and the audit log through the API: the pages' rights, the pages' files byte for byte, the
codebook and the audit log's rows as the pages give them, paging, the token's name in the audit trail, bad input
never a 500, and constant queries per page and per chunk."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.exports import cursor_text, parse_cursor
from api.tests.helpers import Api, api_as, key_for
from families.tests.factories import register_family, screen_family
from reports import datasets as dataset_definitions
from reports.audit import AuditFilters, audit_page, history_sources
from reports.datasets import ExportScope, codebook
from reports.tests.test_datasets import blind_dina, small_trial  # noqa: F401 (fixtures)
from trial.events import record_event
from trial.models import AuditEvent, EventKind
from trial.roles import Role
from trial.tests.factories import UserFactory

DATASETS = "/api/v1/datasets/"
CODEBOOK = "/api/v1/datasets/codebook/"
AUDIT_LOG = "/api/v1/audit-log/"
AUDIT_CSV = "/api/v1/audit-log/csv/"


def content_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def history(families: int, *, oei, alice) -> None:
    for _n in range(families):
        family = register_family(site=oei, by=alice)
        screen_family(family, by=alice)
        record_event(kind=EventKind.RANDOMISATION_REFUSED, user=alice, site=oei, subject=family.study_id)


# --- Who ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DATASETS, CODEBOOK, f"{DATASETS}families/", AUDIT_LOG, AUDIT_CSV])
def test_a_token_without_the_export_scope_is_refused(dina, url):
    response = api_as(dina).get(url)
    assert response.status_code == 403
    assert "export" in response.json()["detail"]
    assert not AuditEvent.objects.filter(kind__in=[EventKind.DATASET_DOWNLOADED, EventKind.AUDIT_LOG_EXPORTED])


@pytest.mark.parametrize("url", [DATASETS, CODEBOOK, f"{DATASETS}families/"])
def test_an_administrator_reads_no_dataset(adam, url):
    assert api_as(adam, "export").get(url).status_code == 403


@pytest.mark.parametrize("url", [AUDIT_LOG, AUDIT_CSV])
def test_the_audit_log_is_for_the_pi_data_managers_and_administrators(paula, dina, adam, url):
    for user in (paula, dina, adam):
        assert api_as(user, "export").get(url).status_code == 200


def test_no_token_is_401(db):
    response = Api(None).get(DATASETS)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"


# --- Datasets ---------------------------------------------------------------------------------------------------


def test_it_lists_the_datasets_and_formats(dina, blind_dina):  # noqa: F811
    body = api_as(dina, "export").get(DATASETS).json()
    assert [d["key"] for d in body["datasets"]] == ["families", "assessments", "contacts"]
    assert [f["code"] for f in body["formats"]] == ["csv", "xlsx", "dta", "sav"]
    assert body["blinded"] is False
    blinded = api_as(blind_dina, "export").get(DATASETS).json()
    assert [d["key"] for d in blinded["datasets"]] == ["families", "assessments"] and blinded["blinded"] is True


def test_the_codebook_is_the_pages(dina, blind_dina, trial_settings):  # noqa: F811
    for user, blinded in ((dina, False), (blind_dina, True)):
        body = api_as(user, "export").get(CODEBOOK).json()
        expected = codebook(ExportScope(site_ids=None, blinded=blinded))
        assert [d["key"] for d in body["datasets"]] == [d.key for d in expected]
        for got, dataset in zip(body["datasets"], expected, strict=True):
            assert [
                (v["name"], v["label"], v["type"], [(c["code"], c["label"]) for c in v["values"]])
                for v in got["variables"]
            ] == [
                (v.name, str(v.label), v.kind, [(code, str(label)) for code, label in v.values])
                for v in dataset.variables
            ]
    blinded_names = {
        v["name"] for d in api_as(blind_dina, "export").get(CODEBOOK).json()["datasets"] for v in d["variables"]
    }
    assert "arm" not in blinded_names


@pytest.mark.parametrize(
    ("page_params", "api_params"),
    [
        ({"dataset": "families", "values": "codes"}, {}),
        ({"dataset": "assessments", "values": "labels", "shifted": "on"}, {"labels": "true", "shift_dates": "true"}),
        ({"dataset": "contacts", "values": "codes", "site": "OEI"}, {"site": "OEI"}),
    ],
)
def test_the_streamed_csv_is_the_pages_byte_for_byte(client, dina, small_trial, page_params, api_params):  # noqa: F811
    key = page_params["dataset"]
    if page_params.get("site"):
        page_params = {**page_params, "site": str(small_trial["referred"].site.pk)}
    client.force_login(dina)
    page = client.get(reverse("reports:datasets"), {"file_format": "csv", **page_params})
    response = api_as(dina, "export").get(f"{DATASETS}{key}/", api_params)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == page["Content-Type"]
    assert response["Content-Disposition"] == page["Content-Disposition"]
    assert content_of(response) == content_of(page)


@pytest.mark.parametrize("file_format", ["xlsx", "dta", "sav"])
def test_the_other_formats_are_the_pages_files(client, dina, small_trial, file_format):  # noqa: F811
    response = api_as(dina, "export").get(f"{DATASETS}families/", {"file_format": file_format})
    assert response.status_code == 200
    client.force_login(dina)
    page = client.get(
        reverse("reports:datasets"), {"dataset": "families", "file_format": file_format, "values": "codes"}
    )
    assert response["Content-Type"] == page["Content-Type"]
    assert response["Content-Disposition"] == page["Content-Disposition"]
    assert content_of(response)[:2] == content_of(page)[:2]


def test_a_download_is_recorded_as_on_the_page_with_the_tokens_name(dina, oei, small_trial):  # noqa: F811
    key = key_for(dina, "export")
    content_of(Api(key).get(f"{DATASETS}assessments/", {"labels": "true", "shift_dates": "true", "site": "LAR"}))
    event = AuditEvent.objects.get(kind=EventKind.DATASET_DOWNLOADED)
    token_name = event.details.pop("token")
    assert token_name.startswith("test token")
    assert event.details == {
        "dataset": "assessments",
        "format": "csv",
        "labels": True,
        "shifted": True,
        "site_filter": "LAR",
        "blinded": False,
    }
    call = AuditEvent.objects.get(kind=EventKind.API_CALL)
    assert call.details["operation"] == "dataset" and call.details["token"] == token_name
    assert call.details["status"] == 200 and call.site is not None and call.site.code == "LAR"


def test_a_blinded_data_manager_gets_the_blinded_files(blind_dina, small_trial):  # noqa: F811
    api = api_as(blind_dina, "export")
    header = content_of(api.get(f"{DATASETS}families/")).decode("utf-8").splitlines()[0]
    assert "arm" not in header.removeprefix("\ufeff").split(",")
    assert api.get(f"{DATASETS}contacts/").status_code == 404
    assert AuditEvent.objects.get(kind=EventKind.DATASET_DOWNLOADED).details["blinded"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"file_format": "pdf"}, "file_format"),
        ({"labels": "maybe"}, "labels"),
        ({"shift_dates": "2"}, "shift_dates"),
        ({"site": "XYZ"}, "site"),
        ({"site": "\x00"}, "site"),
    ],
)
def test_bad_parameters_are_a_400_problem(dina, params, field):
    response = api_as(dina, "export").get(f"{DATASETS}families/", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_an_unknown_dataset_is_a_404_problem(dina):
    response = api_as(dina, "export").get(f"{DATASETS}secrets/")
    assert response.status_code == 404 and response.json()["status"] == 404


def test_a_dataset_chunk_costs_the_same_queries_whatever_the_chunk(dina, oei, alice, monkeypatch):
    monkeypatch.setattr(dataset_definitions, "CHUNK", 2)
    api = api_as(dina, "export")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            content_of(api.get(f"{DATASETS}families/"))
        return len(captured)

    history(2, oei=oei, alice=alice)
    queries()  # the token's first use is noted once (last_used_at)
    one_chunk = queries()
    history(2, oei=oei, alice=alice)
    two_chunks = queries()
    history(2, oei=oei, alice=alice)
    three_chunks = queries()
    assert three_chunks - two_chunks == two_chunks - one_chunk


# --- The audit log ----------------------------------------------------------------------------------------------


def comparable(rows) -> list[tuple]:
    return [(r["who"], r["what"], r["kind"], r["study_id"], r["site"], r["reason"], r["fields"]) for r in rows]


def page_rows(viewer, filters: AuditFilters, size: int = 50) -> list[tuple]:
    return [
        (r.who, r.what, r.kind, r.study_id, r.site, r.reason, [str(f) for f in r.fields])
        for r in audit_page(viewer=viewer, filters=filters, size=size).rows
    ]


def test_the_audit_log_gives_the_pages_rows_for_the_same_filters(paula, oei, lar, alice, bob):
    history(3, oei=oei, alice=alice)
    register_family(site=lar, by=bob)
    api = api_as(paula, "export")
    cases = [
        ({}, AuditFilters()),
        ({"site": "LAR"}, AuditFilters(site=lar)),
        ({"user": "alice", "kind": "families.family"}, AuditFilters(username="alice", kind="families.family")),
        ({"family": "OEI-002"}, AuditFilters(study_id="OEI-002")),
    ]
    for params, filters in cases:
        expected = page_rows(paula, filters)
        body = api.get(AUDIT_LOG, params).json()
        assert comparable(body["rows"]) == expected, params
        assert expected


def test_the_from_and_to_filters_take_days_and_moments(paula, oei, alice):
    history(2, oei=oei, alice=alice)
    api = api_as(paula, "export")
    newest = AuditEvent.objects.filter(kind=EventKind.RANDOMISATION_REFUSED).order_by("-at").first()
    assert newest is not None
    moment = newest.at.isoformat()
    rows = api.get(AUDIT_LOG, {"from": moment, "to": moment, "kind": "event:randomisation_refused"}).json()["rows"]
    assert [row["study_id"] for row in rows] == [newest.subject]
    today = newest.at.date().isoformat()
    assert len(api.get(AUDIT_LOG, {"from": today, "kind": "event:randomisation_refused"}).json()["rows"]) == 2


def test_paging_walks_every_row_once(paula, oei, alice):
    history(12, oei=oei, alice=alice)  # more than two pages of 50
    api = api_as(paula, "export")
    everything = page_rows(paula, AuditFilters(), size=1000)
    seen: list[tuple] = []
    url, params = AUDIT_LOG, {}
    pages = 0
    while True:
        body = api.get(url, params).json()
        seen += comparable(body["rows"])
        pages += 1
        if body["next"] is None:
            assert body["cursor"] is None
            break
        assert body["next"].endswith(f"cursor={body['cursor']}")
        params = {"cursor": body["cursor"]}
    assert pages >= 2
    # Each call of the log is itself an event, newer than the first page: the walk saw the log as it was.
    assert seen == everything


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"family": "seven"}, "family"),
        ({"user": "nobody-has-this"}, "user"),
        ({"site": "XYZ"}, "site"),
        ({"kind": "nothing"}, "kind"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"to": "9999-12-31"}, "to"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_bad_filters_are_a_400_problem(paula, params, field):
    response = api_as(paula, "export").get(AUDIT_LOG, params)
    assert response.status_code == 400, response.content
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_filters_are_explained_in_norwegian(paula):
    response = api_as(paula, "export", language="nb").get(AUDIT_LOG, {"family": "seven"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] != "Give a study ID such as OEI-007."


def test_the_cursor_round_trips(paula, oei, alice):
    history(20, oei=oei, alice=alice)
    page = audit_page(viewer=paula, filters=AuditFilters(), size=5)
    assert page.next_cursor is not None
    assert parse_cursor(cursor_text(page.next_cursor)) == page.next_cursor


def test_a_page_of_the_log_costs_the_same_queries_small_or_large(paula, oei, alice):
    api = api_as(paula, "export")

    def queries(**params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(AUDIT_LOG, params).status_code == 200
        return len(captured)

    history(2, oei=oei, alice=alice)
    queries()  # the token's first use is noted once (last_used_at)
    small = queries()
    history(40, oei=oei, alice=alice)
    large = queries()
    cursor = api.get(AUDIT_LOG).json()["cursor"]
    deeper = queries(cursor=cursor)
    assert small == large == deeper
    assert large <= 2 * len(history_sources()) + 12


def test_the_csv_is_the_pages_and_recorded_with_the_tokens_name(client, paula, oei, alice):
    history(3, oei=oei, alice=alice)
    client.force_login(paula)
    page = content_of(client.get(reverse("reports:audit_csv"), {"site": "OEI", "kind": "families.family"}))
    response = Api(key_for(paula, "export")).get(AUDIT_CSV, {"site": "OEI", "kind": "families.family"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    assert content_of(response) == page
    assert len(list(csv.reader(io.StringIO(page.decode())))) == 1 + 2 * 3  # each family created, then screened
    api_export = AuditEvent.objects.filter(kind=EventKind.AUDIT_LOG_EXPORTED).order_by("pk").last()
    assert api_export is not None
    assert api_export.details["filters"] == {"site": "OEI", "kind": "families.family"}
    assert api_export.details["token"].startswith("test token")


def test_the_log_shows_an_api_call_with_its_token(paula, alice):
    record_event(
        kind=EventKind.API_CALL,
        user=alice,
        operation="randomisations",
        method="POST",
        status=201,
        token="analysis script",
        token_prefix="abcd1234",
    )
    rows = api_as(paula, "export").get(AUDIT_LOG, {"kind": "event:api_call"}).json()["rows"]
    assert rows[-1]["what"] == "API call: randomisations (POST, 201) with token 'analysis script'"
    assert "abcd1234" not in str(rows)


def test_a_blinded_reader_gets_what_the_page_gives_them(oei, alice):
    reader = UserFactory(username="blinda", roles=[Role.DATA_MANAGER, Role.OUTCOME_ASSESSOR])
    history(2, oei=oei, alice=alice)
    record_event(kind=EventKind.UNSEALED_LIST_VIEWED, user=alice, site=oei, subject="OEI")
    api = api_as(reader, "export")
    expected = page_rows(reader, AuditFilters())
    body = api.get(AUDIT_LOG).json()
    assert comparable(body["rows"]) == expected
    assert all(row["kind"] != "event:unsealed_list_viewed" for row in body["rows"])
    family_rows = [row for row in body["rows"] if row["study_id"]]
    assert family_rows and all(row["date_only"] and "T" not in row["when"] for row in family_rows)


# --- Hostile input -------------------------------------------------------------------------------------------

TEXT = st.text(max_size=40) | st.sampled_from(["", "all", "OEI", "true", "2026-01-01", "2026-01-01T10:00", "\x00"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["file_format", "labels", "shift_dates", "site", "user", "family", "kind", "from", "to", "cursor"]
        ),
        TEXT,
        max_size=5,
    ),
    url=st.sampled_from([f"{DATASETS}families/", AUDIT_LOG, AUDIT_CSV]),
)
def test_any_query_is_answered_without_a_500(paula, params, url):
    response = api_as(paula, "export").get(url, params)
    assert response.status_code in (200, 400), content_of(response)[:300]
    content_of(response)


@pytest.mark.parametrize("file_format", ["xlsx", "dta", "sav"])
def test_a_file_that_cannot_be_written_is_a_503_problem_for_that_download_only(
    dina,
    small_trial,  # noqa: F811
    monkeypatch,
    tmp_path,
    file_format,
):
    # As the page's test does: a temporary folder the files cannot be written to, as on a full disk.
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "gone"))
    api = api_as(dina, "export", language="nb")

    response = api.get(f"{DATASETS}families/", {"file_format": file_format})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["type"] == "urn:family-partner:problem:file-not-written"
    assert "disken" in body["detail"] and "gone" not in body["detail"]
    # CSV is streamed from the database, no temporary file: it still downloads.
    assert api.get(f"{DATASETS}families/").status_code == 200
