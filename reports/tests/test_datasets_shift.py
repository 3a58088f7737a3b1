"""Date-shifted datasets: one shift per family for all its dates, in every download and dataset; families differ;
concurrent first downloads make one shift per family. And the queries: as many for N as for 3N families."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from families.models import Family
from families.tests.test_concurrency import run_together
from reports import datasets
from reports.datasets import ASSESSMENTS, CONTACTS, FAMILIES, ExportScope, build_dataset, date_shifts
from reports.models import MAX_SHIFT_DAYS, MIN_SHIFT_DAYS, DateShift
from reports.tests import test_datasets
from reports.tests.test_datasets import URL, content_of, download, read_csv
from visits.tests.factories import assigned_family, log_contact, partner

small_trial = test_datasets.small_trial  # the fixture, shared


def _dates(row: dict) -> dict[str, date]:
    return {name: date.fromisoformat(value) for name, value in row.items() if _is_date(value)}


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def test_every_date_of_a_family_moves_by_its_own_days_in_every_download(client, dina, small_trial):
    client.force_login(dina)
    real = {row["study_id"]: row for row in read_csv(download(client, dataset="families"))}
    first = read_csv(download(client, dataset="families", shifted="on"))
    again = read_csv(download(client, dataset="families", shifted="on"))
    assert first == again  # stable across downloads
    shifts = {}
    for row in first:
        real_dates, shifted_dates = _dates(real[row["study_id"]]), _dates(row)
        assert real_dates.keys() == shifted_dates.keys()
        moved = {(real_dates[name] - shifted_dates[name]).days for name in real_dates}
        assert len(moved) == 1, (row["study_id"], moved)  # every date of the family by the same days
        shifts[row["study_id"]] = moved.pop()
    assert all(MIN_SHIFT_DAYS <= days <= MAX_SHIFT_DAYS for days in shifts.values())
    assert len(set(shifts.values())) > 1  # families differ (12 families drawn from 365 values each)
    assert DateShift.objects.count() == Family.objects.count()

    # The same days in the other datasets, so that they still join.
    real_assessments = read_csv(download(client, dataset="assessments"))
    for real_row, row in zip(
        real_assessments, read_csv(download(client, dataset="assessments", shifted="on")), strict=True
    ):
        for name, day in _dates(real_row).items():
            assert day - date.fromisoformat(row[name]) == timedelta(days=shifts[row["study_id"]])
    real_contacts = read_csv(download(client, dataset="contacts"))
    shifted_contacts = read_csv(download(client, dataset="contacts", shifted="on"))
    assert real_contacts
    for real_row, row in zip(real_contacts, shifted_contacts, strict=True):
        moved = date.fromisoformat(real_row["contact_date"]) - date.fromisoformat(row["contact_date"])
        assert moved == timedelta(days=shifts[row["study_id"]])
    assert DateShift.objects.count() == Family.objects.count()  # none drawn twice


def test_shifted_files_say_so(client, dina, small_trial, tmp_path):
    import pyreadstat

    client.force_login(dina)
    response = download(client, dataset="families", shifted="on", file_format="dta")
    assert "dates-shifted" in response["Content-Disposition"]
    path = tmp_path / "f.dta"
    path.write_bytes(content_of(response))
    _frame, meta = pyreadstat.read_dta(str(path))
    assert meta.column_names_to_labels["referral_date"] == "Referral date (shifted)"
    assert "shifted" in meta.file_label.lower()
    plain = download(client, dataset="families", file_format="csv")
    assert "shifted" not in plain["Content-Disposition"]
    page = client.get(URL)
    assert str(MAX_SHIFT_DAYS) in page.content.decode()


def test_the_shift_is_never_shown_on_the_page(client, dina, small_trial):
    client.force_login(dina)
    content_of(download(client, dataset="families", shifted="on"))
    html = client.get(URL).content.decode()
    for shift in DateShift.objects.all():
        assert f">{shift.days}<" not in html


def test_concurrent_first_downloads_make_one_shift_per_family(postgres, transactional_db, oei, alice):
    from families.tests.factories import family_in_state

    ids = [family_in_state("consented", site=oei, by=alice).pk for _i in range(10)]
    results, errors = run_together(6, lambda _i: date_shifts(ids))
    assert errors == [None] * 6
    assert DateShift.objects.filter(family_id__in=ids).count() == len(ids)
    stored = dict(DateShift.objects.values_list("family_id", "days"))
    assert all(result == stored for result in results)


def _queries(scope: ExportScope, key: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        dataset = build_dataset(key, scope)
        rows = [row for chunk in dataset.chunks() for row in chunk]
    assert rows
    return len(queries)


def _grow(oei, alice, fp, count: int) -> None:
    for _i in range(count):
        family = assigned_family(oei, researcher=alice, to=fp)
        log_contact(family, by=fp.user)


@pytest.mark.parametrize("shifted", [False, True])
def test_the_queries_are_as_many_for_n_and_3n_families(oei, alice, shifted):
    fp = partner(oei, "fiona", capacity=20)
    _grow(oei, alice, fp, 2)
    scope = ExportScope(site_ids=None, blinded=False, shifted=shifted)
    small = {key: _queries(scope, key) for key in (FAMILIES, ASSESSMENTS, CONTACTS)}
    DateShift.objects.all().delete()  # the larger trial's first shifted download too
    _grow(oei, alice, fp, 4)
    assert Family.objects.count() >= 3 * 2
    assert {key: _queries(scope, key) for key in (FAMILIES, ASSESSMENTS, CONTACTS)} == small


def test_the_queries_grow_with_chunks_not_families(oei, alice, monkeypatch):
    fp = partner(oei, "fiona", capacity=20)
    _grow(oei, alice, fp, 3)
    scope = ExportScope(site_ids=None, blinded=False)
    families = Family.objects.count()
    monkeypatch.setattr(datasets, "CHUNK", families)
    one_chunk = _queries(scope, FAMILIES)
    monkeypatch.setattr(datasets, "CHUNK", (families + 1) // 2)
    two_chunks = _queries(scope, FAMILIES)
    monkeypatch.setattr(datasets, "CHUNK", (families + 2) // 3)
    three_chunks = _queries(scope, FAMILIES)
    assert three_chunks - two_chunks == two_chunks - one_chunk  # a constant number of queries per chunk
    assert two_chunks - one_chunk <= 8


def test_the_streamed_csv_is_made_a_chunk_at_a_time(client, dina, oei, alice, monkeypatch):
    fp = partner(oei, "fiona", capacity=20)
    _grow(oei, alice, fp, 3)
    monkeypatch.setattr(datasets, "CHUNK", 2)
    client.force_login(dina)
    response = download(client, dataset="families")
    assert response.streaming
    pieces = list(response.streaming_content)
    families = Family.objects.count()
    assert len(pieces) == 1 + (families + 1) // 2  # the header, then one piece per chunk of two families
    assert len(list(csv.reader(io.StringIO(b"".join(pieces).decode())))) == families + 1
