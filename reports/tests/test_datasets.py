"""The analysis datasets: their rows and columns, the codebook, every format, rights, identifiers, formula injection.

`small_trial` builds a trial through the services: a family in every status, both arms, assessments (a follow-up
with the assessor's guess), contacts (one voided), a family lost to follow-up; every free-text field and every
identifier holds a planted value that must never appear in any file."""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from families import services as family_services
from families.models import Family, ReferralSource, StruggleArea
from families.tests.factories import consent_family, days_ago, screen_family
from followups import services as followup_services
from followups.models import Assessment
from followups.tests.factories import record, site_assessor
from randomization import services as randomisation
from randomization.models import Arm
from reports.datasets import (
    ASSESSMENTS,
    CONTACTS,
    FAMILIES,
    ExportScope,
    build_dataset,
    intervention_dose,
)
from trial.models import AuditEvent, EventKind, TrialSettings
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services as visit_services
from visits.tests.factories import days_back, log_contact, partner, randomised_family

URL = reverse("reports:datasets")
# Values planted in every identifier and free-text field; none may appear in any file.
PLANTED = {
    "contact_name": "Plantet Navnesen",
    "national_id_number": "01019012345",
    "phone": "99887766",
    "address": "Hemmeligveien 7",
    "other_members": "Skjult Barnesen",
}
FREE_TEXT = [
    "DECLINE-DETAILS-SECRET",
    "WITHDRAWAL-DETAILS-SECRET",
    "RESCREEN-REASON-SECRET",
    "ASSESSMENT-DETAILS-SECRET",
    "LOST-DETAILS-SECRET",
    "CONTACT-NOTES-SECRET",
    "VOID-REASON-SECRET",
    "END-DETAILS-SECRET",
    "IN-ERROR-REASON-SECRET",
]
INJECTION = '=HYPERLINK("http://evil.example","x")'


def register(site, by, *, referral_days_ago: int = 30) -> Family:
    return family_services.family_register(
        site=site,
        referral_date=days_ago(referral_days_ago),
        referral_source=ReferralSource.HEALTH_SERVICE,
        parent_birth_years=[1990, 1985],
        child_birth_dates=[days_ago(365 * 7 + 30), days_ago(365 * 3 + 30)],
        identifiers=family_services.Identifiers(**PLANTED),
        registered_by=by,
        token=uuid.uuid4(),
    )


def plant_identifiers(family: Family, by) -> None:
    family_services.family_update_identifiers(
        family=family, identifiers=family_services.Identifiers(**PLANTED), changed_by=by
    )


@pytest.fixture
def small_trial(oei, lar, alice, bob, dina, trial_settings):
    """Families of OEI in every status and both arms, one LAR family; returns {name: Family}."""
    trial_settings.questionnaires = [INJECTION, "SDQ"]
    trial_settings.save()
    families = {}
    families["referred"] = register(oei, alice)
    families["ineligible"] = register(oei, alice)
    screen_family(families["ineligible"], by=alice, eligible=False)
    families["rescreened"] = register(oei, alice)
    screen_family(families["rescreened"], by=alice, eligible=False, on_days_ago=25)
    family_services.family_screen(
        family=Family.objects.get(pk=families["rescreened"].pk),
        screened_on=days_ago(20),
        involved_with_child_welfare=True,
        harmful_circumstances=True,
        struggle_areas=[StruggleArea.HOUSING, StruggleArea.VIOLENCE, StruggleArea.FINANCES],
        rescreening_reason=FREE_TEXT[2],
        screened_by=alice,
        token=uuid.uuid4(),
    )
    families["declined"] = register(oei, alice)
    screen_family(families["declined"], by=alice)
    family_services.family_record_decline(
        family=families["declined"],
        decided_on=days_ago(10),
        reason="privacy",
        details=FREE_TEXT[0],
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    families["consented"] = register(oei, alice)
    screen_family(families["consented"], by=alice)
    consent_family(families["consented"], by=alice)
    families["withdrawn"] = register(oei, alice)
    screen_family(families["withdrawn"], by=alice)
    consent_family(families["withdrawn"], by=alice)
    family_services.family_withdraw(
        family=families["withdrawn"],
        withdrawn_on=days_ago(5),
        reason="moved_away",
        details=FREE_TEXT[1],
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    assessor = site_assessor(oei)
    fp = partner(oei, "fiona")
    with days_back(120):
        families["intervention"] = randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
        families["control"] = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    for name in ("intervention", "control"):
        plant_identifiers(families[name], alice)
        three = Assessment.objects.get(family=families[name], months=3)
        record(
            three,
            by=assessor,
            questionnaires=[INJECTION, "SDQ"],
            details=FREE_TEXT[3],
            arm_guess="intervention" if name == "intervention" else "dont_know",
        )
    visit_services.family_assign(
        family=families["intervention"], partner=fp, started_on=days_ago(100), assigned_by=alice
    )
    log_contact(
        families["intervention"], by=fp.user, contact_date=days_ago(99), duration_quarters=24, notes=FREE_TEXT[5]
    )
    log_contact(
        families["intervention"], by=fp.user, contact_date=days_ago(92), duration_quarters=8, kind="phone_video"
    )
    mistake = log_contact(families["intervention"], by=fp.user, contact_date=days_ago(91), duration_quarters=4)
    visit_services.contact_void(contact=mistake, voided_by=alice, reason=FREE_TEXT[6])
    visit_services.intervention_end(
        family=families["intervention"],
        ended_on=days_ago(1),
        reason="family_ended",
        details=FREE_TEXT[7],
        ended_by=alice,
    )
    with days_back(120):
        families["lost"] = randomised_family(oei, researcher=alice, arm=Arm.CONTROL)
    followup_services.family_lose_to_follow_up(
        family=families["lost"],
        lost_on=days_ago(3),
        reason="moved",
        details=FREE_TEXT[4],
        recorded_by=assessor,
        token=uuid.uuid4(),
    )
    randomisation.allocation_annotate(
        allocation=families["control"].allocation, reason=FREE_TEXT[8], annotated_by=alice
    )
    families["larvik"] = register(lar, bob)
    return {name: Family.objects.get(pk=family.pk) for name, family in families.items()}


@pytest.fixture
def blind_dina(db):
    """A data manager who is also an outcome assessor: blinded."""
    return UserFactory(username="blinddina", roles=[Role.DATA_MANAGER, Role.OUTCOME_ASSESSOR])


def download(client, **params):
    response = client.get(URL, {"values": "codes", "file_format": "csv", **params})
    assert response.status_code == 200, response.content[:500]
    assert "attachment" in response["Content-Disposition"], response.content[:2000]
    return response


def content_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def read_csv(response) -> list[dict]:
    text = content_of(response).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def rows_by_study_id(rows: list[dict]) -> dict[str, dict]:
    return {row["study_id"]: row for row in rows}


# --- Rows and columns ----------------------------------------------------------------------------------------


def test_it_gives_one_row_per_family_with_its_columns(client, dina, small_trial):
    client.force_login(dina)
    rows = read_csv(download(client, dataset="families"))
    assert len(rows) == Family.objects.count()
    header = list(rows[0])
    assert header[:6] == ["study_id", "site", "arm", "referral_date", "referral_source", "status"]
    assert [name for name in header if name.startswith("fu")] == [
        f"fu{months}_{what}" for months in (0, 3, 6, 12, 18) for what in ("status", "date")
    ]
    assert header[-8:] == [
        "intervention_start",
        "intervention_end",
        "intervention_end_reason",
        "family_weeks",
        "hours_total",
        "hours_per_week",
        "weeks_on_target",
        "contacts_n",
    ]
    by_id = rows_by_study_id(rows)
    referred = by_id[small_trial["referred"].study_id]
    assert referred["status"] == "referred"
    assert referred["screening_date"] == referred["eligible"] == referred["consent_decision"] == ""
    assert referred["children_n"] == "2"
    assert referred["referral_date"] == days_ago(30).isoformat()
    assert referred["referral_source"] == "health_service"

    rescreened = by_id[small_trial["rescreened"].study_id]
    assert rescreened["screenings_n"] == "2"
    assert rescreened["screening_date"] == days_ago(20).isoformat()
    assert rescreened["eligible"] == "1"
    assert (rescreened["struggle_housing"], rescreened["struggle_violence"], rescreened["struggle_employment"]) == (
        "1",
        "1",
        "0",
    )
    assert rescreened["struggle_areas_n"] == "3"
    assert rescreened["oldest_parent_age"] == str(days_ago(20).year - 1985)
    assert rescreened["youngest_child_age"] == "3"

    ineligible = by_id[small_trial["ineligible"].study_id]
    assert ineligible["eligible"] == "0"
    assert ineligible["failed_harmful_circumstances"] == "1"
    assert ineligible["failed_parent_age"] == "0"
    assert ineligible["harmful_circumstances"] == "0"

    declined = by_id[small_trial["declined"].study_id]
    assert (declined["consent_decision"], declined["decline_reason"]) == ("declined", "privacy")
    assert declined["consent_date"] == days_ago(10).isoformat()

    withdrawn = by_id[small_trial["withdrawn"].study_id]
    assert (withdrawn["status"], withdrawn["withdrawal_reason"], withdrawn["withdrawal_data_kept"]) == (
        "withdrawn",
        "moved_away",
        "1",
    )
    assert withdrawn["withdrawal_date"] == days_ago(5).isoformat()
    assert withdrawn["fu0_status"] == "stopped"

    intervention = by_id[small_trial["intervention"].study_id]
    assert (intervention["arm"], intervention["stratum"], intervention["site"]) == ("intervention", "OEI", "OEI")
    assert intervention["randomisation_date"] == days_ago(120).isoformat()
    assert (intervention["fu0_status"], intervention["fu3_status"], intervention["fu6_status"]) == (
        "completed",
        "completed",
        "scheduled",
    )
    assert intervention["intervention_start"] == days_ago(100).isoformat()
    assert intervention["intervention_end"] == days_ago(1).isoformat()
    assert intervention["intervention_end_reason"] == "family_ended"
    assert intervention["hours_total"] == "8.0"  # 6 h + 2 h; the voided hour counts nowhere
    assert intervention["contacts_n"] == "2"
    assert intervention["family_weeks"] == str(round(100 / 7, 2))

    control = by_id[small_trial["control"].study_id]
    assert control["arm"] == "control"
    assert control["intervention_start"] == control["hours_total"] == control["contacts_n"] == ""

    lost = by_id[small_trial["lost"].study_id]
    assert (lost["lost_reason"], lost["lost_date"]) == ("moved", days_ago(3).isoformat())
    assert by_id[small_trial["larvik"].study_id]["site"] == "LAR"


def test_it_gives_one_row_per_assessment(client, dina, small_trial):
    client.force_login(dina)
    rows = read_csv(download(client, dataset="assessments"))
    assert list(rows[0]) == [
        "study_id",
        "site",
        "months",
        "opens_on",
        "target_on",
        "closes_on",
        "status",
        "date",
        "mode",
        "questionnaires",
        "outside_window",
        "missed_reason",
        "stopped_on",
        "stop_reason",
        "arm_guess",
    ]
    expected = Assessment.objects.filter(family__site__code__in=["OEI", "LAR"]).count()
    assert len(rows) == expected
    three = next(r for r in rows if r["study_id"] == small_trial["intervention"].study_id and r["months"] == "3")
    stored = Assessment.objects.get(family=small_trial["intervention"], months=3)
    assert (three["status"], three["date"], three["mode"]) == ("completed", stored.target_on.isoformat(), "phone")
    assert three["arm_guess"] == "intervention"
    assert three["questionnaires"] == "'" + INJECTION + "; SDQ"  # neutralised: it started with "="
    stopped = next(r for r in rows if r["study_id"] == small_trial["withdrawn"].study_id)
    assert (stopped["status"], stopped["stop_reason"]) == ("stopped", "withdrawal")


def test_it_gives_one_row_per_contact_voided_ones_marked(client, dina, small_trial):
    client.force_login(dina)
    rows = read_csv(download(client, dataset="contacts"))
    assert list(rows[0]) == [
        "study_id",
        "site",
        "contact_date",
        "quarters",
        "hours",
        "kind",
        "elem_home_visitation",
        "elem_coordination",
        "elem_ecological",
        "elem_parental_guidance",
        "elem_therapeutic_relationship",
        "voided",
    ]
    assert [(r["contact_date"], r["quarters"], r["hours"], r["kind"], r["voided"]) for r in rows] == [
        (days_ago(99).isoformat(), "24", "6.0", "home_visit", "0"),
        (days_ago(92).isoformat(), "8", "2.0", "phone_video", "0"),
        (days_ago(91).isoformat(), "4", "1.0", "home_visit", "1"),
    ]
    assert rows[0]["elem_home_visitation"] == rows[0]["elem_parental_guidance"] == "1"
    assert rows[0]["elem_coordination"] == "0"


def test_labels_replace_codes_in_the_chosen_language(client, dina, small_trial):
    client.force_login(dina)
    rows = rows_by_study_id(read_csv(download(client, dataset="families", values="labels")))
    intervention = rows[small_trial["intervention"].study_id]
    assert intervention["arm"] == "Family Partner intervention"
    assert intervention["status"] == "Randomised"
    assert intervention["site"] == small_trial["intervention"].site.name
    assert rows[small_trial["ineligible"].study_id]["eligible"] == "no"
    response = client.get(
        URL, {"dataset": "families", "file_format": "csv", "values": "labels"}, HTTP_ACCEPT_LANGUAGE="nb"
    )
    norwegian = rows_by_study_id(read_csv(response))
    assert norwegian[small_trial["intervention"].study_id]["status"] != "Randomised"
    assert norwegian[small_trial["intervention"].study_id]["status"] == str(_nb("Randomised"))


def _nb(text: str) -> str:
    from django.utils import translation

    with translation.override("nb"):
        return translation.gettext(text)


def test_the_codebook_covers_every_column_and_every_code(client, dina, small_trial):
    client.force_login(dina)
    scope = ExportScope(site_ids=None, blinded=False)
    for key in (FAMILIES, ASSESSMENTS, CONTACTS):
        dataset = build_dataset(key, scope)
        header = next(
            csv.reader(io.StringIO(content_of(download(client, dataset=key)).decode().removeprefix("\ufeff")))
        )
        assert header == [variable.name for variable in dataset.variables]
        coded = {
            variable.name: {str(code) for code, _label in variable.values}
            for variable in dataset.variables
            if variable.coded
        }
        for row in read_csv(download(client, dataset=key)):
            for name, codes in coded.items():
                assert row[name] == "" or row[name] in codes, (key, name, row[name])
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    for key in (FAMILIES, ASSESSMENTS, CONTACTS):
        for variable in build_dataset(key, scope).variables:
            assert f"<code>{variable.name}</code>" in html


# --- Stata, SPSS, Excel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["dta", "sav"])
def test_stata_and_spss_files_carry_value_labels_and_dates(client, dina, small_trial, tmp_path, file_format):
    import pyreadstat

    client.force_login(dina)
    response = download(client, dataset="families", file_format=file_format)
    path = tmp_path / f"families.{file_format}"
    path.write_bytes(content_of(response))
    reader = pyreadstat.read_dta if file_format == "dta" else pyreadstat.read_sav
    frame, meta = reader(str(path))
    assert len(frame) == Family.objects.count()
    assert meta.column_names_to_labels["study_id"] == "Study ID"
    arm_labels = meta.variable_value_labels["arm"]
    assert sorted(arm_labels.values()) == ["Family Partner intervention", "Usual child welfare services"]
    row = frame[frame["study_id"] == small_trial["intervention"].study_id].iloc[0]
    assert arm_labels[row["arm"]] == "Family Partner intervention"
    assert meta.variable_value_labels["eligible"] == {0: "no", 1: "yes"}
    assert row["randomisation_date"] == days_ago(120)  # a real date
    labelled, _meta = reader(str(path), apply_value_formats=True)
    assert labelled[labelled["study_id"] == small_trial["control"].study_id].iloc[0]["status"] == "Randomised"


def test_the_excel_file_has_a_sheet_per_dataset_and_the_codebook(client, dina, small_trial):
    client.force_login(dina)
    response = download(client, dataset="families", file_format="xlsx")
    workbook = load_workbook(io.BytesIO(content_of(response)))
    assert workbook.sheetnames == ["families", "assessments", "contacts", "codebook"]
    families = workbook["families"]
    assert families.freeze_panes == "A2"
    header = [cell.value for cell in families[1]]
    intervention = next(
        [cell.value for cell in row]
        for row in families.iter_rows(min_row=2)
        if row[0].value == small_trial["intervention"].study_id
    )
    assert intervention[header.index("randomisation_date")].date() == days_ago(120)
    assert intervention[header.index("hours_total")] == 8.0
    codebook = workbook["codebook"]
    names = {(row[0].value, row[1].value) for row in codebook.iter_rows(min_row=3)}
    assert ("families", "arm") in names and ("contacts", "voided") in names
    assessments = workbook["assessments"]
    questionnaires = [row[9].value for row in assessments.iter_rows(min_row=2) if row[9].value]
    assert "'" + INJECTION + "; SDQ" in questionnaires


# --- Rights ---------------------------------------------------------------------------------------------------


def test_a_blinded_data_manager_gets_no_arm_dose_guess_nor_contacts(client, blind_dina, small_trial, tmp_path):
    import pyreadstat

    client.force_login(blind_dina)
    families = read_csv(download(client, dataset="families"))
    forbidden = {"arm", "intervention_start", "hours_total", "contacts_n", "weeks_on_target", "family_weeks"}
    assert not forbidden & set(families[0])
    assessments = read_csv(download(client, dataset="assessments"))
    assert "arm_guess" not in assessments[0]
    words = ["intervention", "Family Partner intervention", "Usual child welfare"]
    for response in (
        download(client, dataset="families", values="labels"),
        download(client, dataset="assessments", values="labels"),
    ):
        text = content_of(response).decode()
        assert not any(word in text for word in words)
    workbook = load_workbook(io.BytesIO(content_of(download(client, dataset="families", file_format="xlsx"))))
    assert workbook.sheetnames == ["families", "assessments", "codebook"]
    for sheet in workbook:
        for row in sheet.iter_rows(values_only=True):
            assert not any(isinstance(value, str) and "intervention" in value.lower() for value in row), row
    path = tmp_path / "f.dta"
    path.write_bytes(content_of(download(client, dataset="families", file_format="dta")))
    _frame, meta = pyreadstat.read_dta(str(path))
    assert "arm" not in meta.column_names
    refused = client.get(URL, {"dataset": "contacts", "file_format": "csv", "values": "codes"})
    assert refused.status_code == 200 and "Content-Disposition" not in refused
    assert "reveals the arm" in refused.content.decode()
    assert 'value="contacts"' not in client.get(URL).content.decode()  # not offered
    page = client.get(URL).content.decode()
    assert "<code>arm</code>" not in page and "<code>contacts</code>" not in page


def test_an_unblinded_user_gets_the_arm_as_a_positive_control(client, paula, small_trial):
    client.force_login(paula)
    assert "arm" in read_csv(download(client, dataset="families"))[0]
    assert content_of(download(client, dataset="contacts"))


@pytest.mark.parametrize("user", ["alice", "carol", "frank", "adam"])
def test_other_roles_are_refused(client, request, user):
    client.force_login(request.getfixturevalue(user))
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"dataset": "families", "file_format": "csv", "values": "codes"}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL, {"dataset": "families", "file_format": "csv", "values": "codes"})
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize(
    "params",
    [
        {"dataset": "nonsense", "file_format": "csv", "values": "codes"},
        {"dataset": "families", "file_format": "exe", "values": "codes"},
        {"dataset": "families", "file_format": "csv", "values": "maybe"},
        {"dataset": "families", "file_format": "csv", "values": "codes", "site": "99999"},
        {"dataset": "families", "file_format": "csv", "values": "codes", "site": "x\x00"},
        {"dataset": "families", "file_format": "csv", "values": "codes", "site": "9" * 40},
        {"dataset": "families", "file_format": "csv", "values": "codes", "site": "\u00b2"},
        {"dataset": "families\x00", "file_format": "dta", "values": "codes"},
        {"dataset": "families"},
    ],
)
def test_bad_parameters_get_a_form_error_not_a_500(client, dina, params):
    client.force_login(dina)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    assert "invalid-feedback" in response.content.decode() or "is-invalid" in response.content.decode()


def test_the_site_filter_keeps_to_the_site(client, dina, small_trial, lar):
    client.force_login(dina)
    rows = read_csv(download(client, dataset="families", site=str(lar.pk)))
    assert [row["study_id"] for row in rows] == [small_trial["larvik"].study_id]
    response = download(client, dataset="families", site=str(lar.pk), shifted="on")
    assert "_lar_" in response["Content-Disposition"] and "dates-shifted" in response["Content-Disposition"]


def test_every_download_is_recorded(client, dina, lar, small_trial):
    client.force_login(dina)
    content_of(download(client, dataset="assessments", values="labels", shifted="on", site=str(lar.pk)))
    event = AuditEvent.objects.get(kind=EventKind.DATASET_DOWNLOADED)
    assert event.user == dina and event.site == lar
    assert event.details == {
        "dataset": "assessments",
        "format": "csv",
        "labels": True,
        "shifted": True,
        "site_filter": "LAR",
        "blinded": False,
    }


# --- No identifiers, ever -------------------------------------------------------------------------------------


def _all_text(file_format: str, content: bytes, tmp_path) -> str:
    if file_format == "csv":
        return content.decode("utf-8")
    if file_format == "xlsx":
        workbook = load_workbook(io.BytesIO(content))
        return "\n".join(str(value) for sheet in workbook for row in sheet.iter_rows(values_only=True) for value in row)
    import pyreadstat

    path = tmp_path / f"data.{file_format}"
    path.write_bytes(content)
    frame, meta = (pyreadstat.read_dta if file_format == "dta" else pyreadstat.read_sav)(str(path))
    return (
        frame.to_csv() + str(meta.variable_value_labels) + str(meta.column_names_to_labels) + content.decode("latin-1")
    )


def test_no_identifier_nor_free_text_in_any_dataset_or_format(client, dina, small_trial, tmp_path):
    client.force_login(dina)
    secrets = [*PLANTED.values(), *FREE_TEXT]
    seen = 0
    for key in (FAMILIES, ASSESSMENTS, CONTACTS):
        for file_format in ("csv", "xlsx", "dta", "sav"):
            for values in ("codes", "labels"):
                for shifted in ("", "on"):
                    response = download(client, dataset=key, file_format=file_format, values=values, shifted=shifted)
                    text = _all_text(file_format, content_of(response), tmp_path)
                    assert small_trial["intervention"].study_id in text  # the crawl reads the data (a positive control)
                    found = [secret for secret in secrets if secret in text]
                    assert not found, (key, file_format, values, shifted, found)
                    seen += 1
    assert seen == 48


# --- Formula injection ----------------------------------------------------------------------------------------


def test_formula_injection_is_neutralised_in_csv_and_excel(client, dina, small_trial):
    client.force_login(dina)
    text = content_of(download(client, dataset="assessments")).decode()
    cells = [cell for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"))) for cell in row]
    assert "'" + INJECTION + "; SDQ" in cells  # the planted value is there, made inert
    for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"))):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    workbook = load_workbook(io.BytesIO(content_of(download(client, dataset="assessments", file_format="xlsx"))))
    for sheet in workbook:
        for row in sheet.iter_rows(values_only=True):
            assert not any(isinstance(v, str) and v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row), row


# --- The dose -------------------------------------------------------------------------------------------------


def test_the_dose_counts_finished_weeks_against_the_prorated_target():
    from datetime import date

    monday = date(2026, 1, 5)
    days = [(monday, 24), (monday + timedelta(days=7), 8), (monday + timedelta(days=14), 24)]
    dose = intervention_dose(started_on=monday, ended_on=None, days=days, target=24, today=monday + timedelta(days=21))
    assert dose.family_weeks == round(22 / 7, 2)
    assert dose.hours_total == 14.0
    assert dose.weeks_on_target == round(2 / 3, 3)  # weeks 1 and 3 reached 6 h, week 2 did not
    started_wednesday = intervention_dose(
        started_on=monday + timedelta(days=2),
        ended_on=None,
        days=[(monday + timedelta(days=3), 20)],
        target=28,
        today=monday + timedelta(days=7),
    )
    assert started_wednesday.weeks_on_target == 1.0  # 5 of 7 days: a target of 20 quarter-hours


def test_the_settings_schedule_makes_the_wide_columns(client, dina, small_trial):
    settings_row = TrialSettings.current()
    settings_row.follow_up_months = [3, 9]
    settings_row.save()
    scope = ExportScope(site_ids=None, blinded=False)
    names = [variable.name for variable in build_dataset(FAMILIES, scope).variables]
    # 6, 12 and 18 are kept: assessments exist for them.
    assert [name for name in names if name.endswith("_status") and name.startswith("fu")] == [
        f"fu{months}_status" for months in (0, 3, 6, 9, 12, 18)
    ]


def test_the_builder_itself_refuses_contacts_and_arm_columns_to_a_blinded_scope(db):
    blinded = ExportScope(site_ids=None, blinded=True)
    with pytest.raises(PermissionError):
        build_dataset(CONTACTS, blinded)
    for key in (FAMILIES, ASSESSMENTS):
        assert not [variable.name for variable in build_dataset(key, blinded).variables if variable.reveals_arm]


@pytest.mark.parametrize("file_format", ["xlsx", "dta", "sav"])
def test_a_file_that_cannot_be_written_answers_a_clear_error_for_that_download_only(
    client, dina, small_trial, monkeypatch, tmp_path, file_format
):
    # Excel, Stata and SPSS files are made through temporary files: a folder they cannot be written to, as on a
    # full disk.
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "gone"))
    client.force_login(dina)

    response = client.get(URL, {"dataset": "families", "file_format": file_format, "values": "codes"})

    assert response.status_code == 503
    page = response.content.decode()
    assert "The file could not be made" in page
    assert "gone" not in page
    # CSV is streamed from the database, no temporary file: it still downloads.
    assert download(client, dataset="families", file_format="csv").status_code == 200
