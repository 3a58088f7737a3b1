"""Whatever a browser (or someone with curl) posts to the family forms, the trial's data stays whole.

Hypothesis builds a valid submission and then spoils it: junk, unicode, huge or empty values in any
field, malformed dates and numbers, household rows beyond the count, management forms that lie or
are missing, keys sent twice. For every submission, as alice (researcher at Øvre Eiker):
- the answer is never a server error;
- either it redirects to the family's page with exactly the records one submission makes (and a
  resubmission of the same form makes nothing more),
- or it shows the form again with every error visible, and nothing at all was written.
Each example runs in a transaction that is rolled back, so every example starts from the same state.
"""

import uuid
from datetime import date, timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from families.models import (
    Child,
    Consent,
    ConsentDecision,
    DeclineReason,
    Family,
    FamilyIdentity,
    FamilyStatus,
    Parent,
    ReferralSource,
    Screening,
    StruggleArea,
    Withdrawal,
)
from families.tests.factories import days_ago, family_in_state
from trial.models import Site
from trial.roles import Role
from trial.tests.factories import UserFactory

TODAY = timezone.localdate()
# A few seconds per property; the whole file takes well under a minute.
FORM_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- Strategies -------------------------------------------------------------------------------------

NASTY_VALUES = [
    "",
    " ",
    "\x00",
    "1\x00",
    "0",
    "-1",
    "1e3",
    "NaN",
    "None",
    "null",
    "true",
    "[]",
    "\u0663",  # Arabic-Indic three
    "\uff11\uff19\uff19\uff10",  # 1990 in full-width digits
    "<script>alert(1)</script>",
    "'; DROP TABLE families_family; --",
    "\u202e\u200b",
    "9" * 400,
    "99999999999999999999999",
    "2019-02-29",
    "2020-02-30",
    "31.12.2019",
    "12/31/2019",
    "2019-13-01",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "-2019-01-01",
    "1899",
    "2101",
    "00000000-0000-0000-0000-000000000000",
    "{oei}",
    "{lar}",
]
junk = st.one_of(
    st.sampled_from(NASTY_VALUES),
    st.text(max_size=40),
    st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=4), st.integers(300, 3000)),
)
numbers_that_lie = st.one_of(
    st.integers(-5, 20).map(str), st.sampled_from(["-1", "1001", "99999999999999999999", "1.5", "", "two"]), junk
)


def as_form_date(day: date, norwegian: bool) -> str:
    return day.strftime("%d.%m.%Y") if norwegian else day.isoformat()


def form_dates(min_value: date, max_value: date):
    return st.builds(as_form_date, st.dates(min_value=min_value, max_value=max_value), st.booleans())


@st.composite
def spoiled(draw, valid: dict[str, list[str]], extra_keys: list[str]) -> dict[str, list[str]]:
    """A valid submission with up to four things done to it: a value replaced, a key dropped, a key
    sent twice, or a key the form does not expect added."""
    data = {key: list(values) for key, values in valid.items()}
    keys = sorted(set(data) | set(extra_keys))
    # Mostly few changes, so that a fair share of submissions are valid and get registered.
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3, 4]))):
        action = draw(st.sampled_from(["replace", "drop", "repeat", "add"]))
        key = draw(st.sampled_from(keys))
        if action == "replace":
            data[key] = [draw(junk)]
        elif action == "drop":
            data.pop(key, None)
        elif action == "repeat":
            data[key] = [*data.get(key, []), draw(junk)]
        else:
            data[key] = [draw(st.one_of(junk, numbers_that_lie))]
    return data


def household_rows(prefix: str, field: str, values: list[str], total: int | None = None) -> dict[str, list[str]]:
    rows = {f"{prefix}-TOTAL_FORMS": [str(len(values) if total is None else total)], f"{prefix}-INITIAL_FORMS": ["0"]}
    for i, value in enumerate(values):
        rows[f"{prefix}-{i}-{field}"] = [value]
    return rows


@st.composite
def registrations(draw) -> dict[str, list[str]]:
    parent = st.one_of(st.integers(1900, TODAY.year).map(str), st.just(""))
    child = st.one_of(form_dates(date(1995, 1, 1), TODAY), st.just(""))
    parents = draw(st.lists(parent, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=4))
    children = draw(st.lists(child, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=5))
    # None: the count matches the rows, as a browser sends it; a number: the count lies.
    total_parents = draw(st.sampled_from([None, None, None, None, 0, 1, 2, 5]))
    total_children = draw(st.sampled_from([None, None, None, 0, 1, 3, 14]))
    valid = {
        "token": [str(draw(st.uuids()))],
        "site": ["{oei}"],
        "referral_date": [draw(form_dates(date(2000, 1, 1), TODAY))],
        "referral_source": [draw(st.sampled_from(ReferralSource.values))],
        "contact_name": [draw(st.text(min_size=1, max_size=60))],
        "national_id_number": [draw(st.sampled_from(["", "01019012480", "010190 12480"]))],
        "phone": [draw(st.sampled_from(["", "91234567", "+47 912 34 567"]))],
        "address": [draw(st.text(max_size=60))],
        "other_members": [draw(st.text(max_size=60))],
        **household_rows("parents", "birth_year", parents, total_parents),
        **household_rows("children", "birth_date", children, total_children),
    }
    extra = [
        "parents-MIN_NUM_FORMS",
        "parents-MAX_NUM_FORMS",
        "children-MAX_NUM_FORMS",
        "parents-5-birth_year",
        "children-12-birth_date",
        "parents--1-birth_year",
    ]
    return draw(spoiled(valid, extra))


@st.composite
def screenings(draw) -> dict[str, list[str]]:
    valid = {
        "token": [str(draw(st.uuids()))],
        "screened_on": [draw(form_dates(days_ago(40), TODAY + timedelta(days=2)))],
        "involved_with_child_welfare": [draw(st.sampled_from(["yes", "no"]))],
        "harmful_circumstances": [draw(st.sampled_from(["yes", "no"]))],
        "struggle_areas": draw(st.lists(st.sampled_from(StruggleArea.values), max_size=5)),
        "rescreening_reason": [draw(st.one_of(st.just(""), st.text(max_size=80)))],
    }
    return draw(spoiled(valid, ["struggle_areas"]))


@st.composite
def consent_decisions(draw) -> dict[str, list[str]]:
    valid = {
        "token": [str(draw(st.uuids()))],
        "decision": [draw(st.sampled_from(ConsentDecision.values))],
        "decided_on": [draw(form_dates(days_ago(25), TODAY + timedelta(days=2)))],
        "form_version": [draw(st.one_of(st.sampled_from(["v1", "2.0 (2025-05)"]), st.text(max_size=40)))],
        "obtained_by": [draw(st.sampled_from(["{alice}", "{rita}", "{bob}", ""]))],
        "decline_reason": [draw(st.sampled_from(["", *DeclineReason.values]))],
        "decline_details": [draw(st.text(max_size=60))],
    }
    return draw(spoiled(valid, []))


# --- Checks -----------------------------------------------------------------------------------------

AUDITED = (Family, Parent, Child, FamilyIdentity, Screening, Consent, Withdrawal)


def trial_state() -> dict[str, object]:
    """Everything a submission could write: records, their audit trail, statuses and study numbers."""
    state: dict[str, object] = {}
    for model in AUDITED:
        state[model.__name__] = model.objects.count()
        state[f"{model.__name__} history"] = model.history.count()
    state["statuses"] = sorted(Family.objects.values_list("study_id", "status"))
    state["numbers"] = sorted(Site.objects.values_list("code", "last_family_number"))
    return state


PLACEHOLDERS = {"{oei}", "{lar}", "{alice}", "{rita}", "{bob}"}


def fill_in(data: dict[str, list[str]], people: dict[str, str]) -> dict[str, list[str]]:
    """Put the primary keys of this test's sites and users where the strategy left placeholders."""
    return {
        key: [value.format_map(people) if value in PLACEHOLDERS else value for value in values]
        for key, values in data.items()
    }


def as_whole_number(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def errors_on_page(response) -> list[str]:
    """Every error message the forms hold; each of them must be visible on the page."""
    messages = []
    for name in ("form", "parents", "children"):
        form = response.context.get(name)
        if form is None:
            continue
        if hasattr(form, "non_form_errors"):
            messages += form.non_form_errors()
            for row in form.forms:
                messages += [message for errors in row.errors.values() for message in errors]
        else:
            messages += [message for errors in form.errors.values() for message in errors]
    return messages


def assert_refused_visibly(response, before, after) -> None:
    assert response.status_code == 200
    assert after == before, "a refused submission wrote to the database"
    messages = errors_on_page(response)
    event("refused: " + " | ".join(sorted({message[:40] for message in messages})))
    assert messages, "the form came back without saying what is wrong"
    page = response.content.decode()
    hidden = [message for message in messages if escape(message) not in page]
    assert not hidden, f"errors not shown on the page: {hidden}"


@pytest.fixture
def rita(oei):
    return UserFactory(username="rita", first_name="Rita", roles=[Role.RESEARCHER], sites=[oei])


@pytest.fixture(params=["referred", "ineligible"])
def family_to_screen(request, alice, oei) -> Family:
    return family_in_state(request.param, site=oei, by=alice)


@pytest.fixture
def eligible_family(alice, oei) -> Family:
    return family_in_state("eligible", site=oei, by=alice)


@pytest.fixture
def people(alice, bob, rita, oei, lar) -> dict[str, str]:
    return {"oei": str(oei.pk), "lar": str(lar.pk), "alice": str(alice.pk), "rita": str(rita.pk), "bob": str(bob.pk)}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Registration -----------------------------------------------------------------------------------


@FORM_SETTINGS
@given(data=registrations())
@example(  # a form whose hidden token went missing must say so
    data={
        "token": [""],
        "site": ["{oei}"],
        "referral_date": ["2025-01-05"],
        "referral_source": ["other"],
        "contact_name": ["Ola"],
        **household_rows("parents", "birth_year", ["1988"]),
        **household_rows("children", "birth_date", ["2019-03-01"]),
    }
)
def test_it_registers_one_whole_family_or_nothing_whatever_is_posted(alice, oei, people, data):
    url = reverse("families:register")
    payload = fill_in(data, people)
    with transaction.atomic():
        client = logged_in(alice)  # its session is rolled back with the example
        before = trial_state()
        response = client.post(url, payload)
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = trial_state()
        if response.status_code == 302:
            assert after["Family"] == before["Family"] + 1
            family = Family.objects.order_by("-pk").first()
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            assert family.site_id == oei.pk
            assert family.registered_by_id == alice.pk
            assert str(family.registration_token) == payload["token"][-1]
            assert family.status == FamilyStatus.REFERRED
            parents = list(family.parents.values_list("birth_year", flat=True))
            children = list(family.children.values_list("birth_date", flat=True))
            assert 1 <= len(parents) == after["Parent"] - before["Parent"]
            assert 1 <= len(children) == after["Child"] - before["Child"]
            assert after["FamilyIdentity"] == before["FamilyIdentity"] + 1
            assert FamilyIdentity.objects.filter(family=family).exists()
            submitted = {
                as_whole_number(value)
                for key, values in payload.items()
                if key.startswith("parents-")
                for value in values
            }
            assert set(parents) <= submitted
            # A resubmission (a double click) returns the same family and makes nothing more.
            again = client.post(url, payload)
            assert again.status_code == 302
            assert again["Location"] == response["Location"]
            assert trial_state() == after
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- Screening --------------------------------------------------------------------------------------


@FORM_SETTINGS
@given(data=screenings())
@example(
    data={
        "token": ["not-a-token"],
        "screened_on": [TODAY.isoformat()],
        "involved_with_child_welfare": ["yes"],
        "harmful_circumstances": ["yes"],
        "struggle_areas": ["finances", "housing"],
        "rescreening_reason": ["New information"],
    }
)
def test_it_screens_once_or_changes_nothing_whatever_is_posted(alice, family_to_screen, people, data):
    family = Family.objects.get(pk=family_to_screen.pk)
    first_screening = family.status == FamilyStatus.REFERRED
    url = reverse("families:screen", args=[family.study_id])
    payload = fill_in(data, people)
    with transaction.atomic():
        client = logged_in(alice)  # its session is rolled back with the example
        before = trial_state()
        response = client.post(url, payload)
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = trial_state()
        if response.status_code == 302:
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            assert after["Screening"] == before["Screening"] + 1
            assert {k: v for k, v in after.items() if not k.startswith(("Screening", "Family", "statuses"))} == {
                k: v for k, v in before.items() if not k.startswith(("Screening", "Family", "statuses"))
            }
            screening = family.screenings.order_by("-pk").first()
            assert str(screening.submission_token) == payload["token"][-1]
            assert screening.screened_by_id == alice.pk
            assert family.referral_date <= screening.screened_on <= timezone.localdate()
            assert first_screening or screening.rescreening_reason.strip()
            family.refresh_from_db()
            assert family.status == (FamilyStatus.ELIGIBLE if screening.eligible else FamilyStatus.INELIGIBLE)
            # The browser resubmits the form it was shown: a first screening's form has no reason field.
            shown = {k: v for k, v in payload.items() if not (first_screening and k == "rescreening_reason")}
            again = client.post(url, shown)
            assert again.status_code == 302, "a resubmitted screening form did not return the first screening"
            assert trial_state() == after
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- Consent ----------------------------------------------------------------------------------------


@FORM_SETTINGS
@given(data=consent_decisions())
@example(
    data={
        "token": [""],
        "decision": ["consented"],
        "decided_on": [TODAY.isoformat()],
        "form_version": ["v1"],
        "obtained_by": ["{alice}"],
    }
)
def test_it_records_one_decision_or_nothing_whatever_is_posted(alice, eligible_family, people, data):
    family = Family.objects.get(pk=eligible_family.pk)
    url = reverse("families:consent", args=[family.study_id])
    payload = fill_in(data, people)
    with transaction.atomic():
        client = logged_in(alice)  # its session is rolled back with the example
        before = trial_state()
        response = client.post(url, payload)
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = trial_state()
        if response.status_code == 302:
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            assert after["Consent"] == before["Consent"] + 1
            decision = Consent.objects.get(family=family)
            family.refresh_from_db()
            assert family.status == decision.decision
            assert decision.recorded_by_id == alice.pk
            assert decision.decided_on <= timezone.localdate()
            if decision.decision == ConsentDecision.CONSENTED:
                assert decision.obtained_by_id in (int(people["alice"]), int(people["rita"]))
                assert decision.form_version.strip()
            else:
                assert decision.decline_reason in DeclineReason.values
            again = client.post(url, payload)
            assert again.status_code == 302
            assert trial_state() == after
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- What the properties found, pinned down ---------------------------------------------------------


def registration_payload(oei_pk: int, **changes) -> dict:
    data = {
        "token": str(uuid.uuid4()),
        "site": str(oei_pk),
        "referral_date": days_ago(10).isoformat(),
        "referral_source": ReferralSource.CHILD_WELFARE_CASEWORKER,
        "contact_name": "Ola Nordmann",
        "parents-TOTAL_FORMS": "1",
        "parents-INITIAL_FORMS": "0",
        "parents-0-birth_year": "1988",
        "children-TOTAL_FORMS": "1",
        "children-INITIAL_FORMS": "0",
        "children-0-birth_date": "2019-03-01",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_it_registers_a_plain_valid_submission(alice, oei):
    response = logged_in(alice).post(reverse("families:register"), registration_payload(oei.pk))
    assert response.status_code == 302
    assert Family.objects.get().study_id == "OEI-001"


@pytest.mark.parametrize("token", [None, "", "not-a-token"], ids=["missing", "empty", "garbled"])
def test_it_tells_the_user_when_the_registration_form_has_no_valid_token(alice, oei, token):
    response = logged_in(alice).post(reverse("families:register"), registration_payload(oei.pk, token=token))
    assert response.status_code == 200
    assert not Family.objects.exists()
    assert "The form has expired; reload the page." in response.context["form"].non_field_errors()
    assert "The form has expired; reload the page." in response.content.decode()


@pytest.mark.parametrize("total", ["two", "100000", "", "1.5"])
def test_it_refuses_a_household_count_that_is_not_a_count(alice, oei, total):
    response = logged_in(alice).post(
        reverse("families:register"), registration_payload(oei.pk, **{"parents-TOTAL_FORMS": total})
    )
    assert response.status_code == 200
    assert response.context["parents"].non_form_errors()
    assert not Family.objects.exists()


def test_it_reads_a_negative_household_count_as_no_rows_and_asks_for_a_parent(alice, oei):
    response = logged_in(alice).post(
        reverse("families:register"), registration_payload(oei.pk, **{"parents-TOTAL_FORMS": "-1"})
    )
    assert response.status_code == 200
    assert "Add at least one parent." in response.content.decode()
    assert not Family.objects.exists()


def test_it_ignores_household_rows_beyond_the_count(alice, oei):
    payload = registration_payload(oei.pk, **{"parents-1-birth_year": "1950"})
    response = logged_in(alice).post(reverse("families:register"), payload)
    assert response.status_code == 302
    assert list(Family.objects.get().parents.values_list("birth_year", flat=True)) == [1988]


def test_it_refuses_a_household_without_its_management_form(alice, oei):
    response = logged_in(alice).post(
        reverse("families:register"),
        registration_payload(oei.pk, **{"children-TOTAL_FORMS": None, "children-INITIAL_FORMS": None}),
    )
    assert response.status_code == 200
    assert "ManagementForm data is missing" in response.content.decode()
    assert not Family.objects.exists()


def test_it_refuses_to_register_at_another_researchers_site(alice, oei, lar):
    response = logged_in(alice).post(reverse("families:register"), registration_payload(lar.pk))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Family.objects.exists()


def test_it_returns_the_first_screening_when_the_screening_form_is_submitted_twice(alice, oei):
    # A double click on "Save screening" for a referred family: the second request arrives after the
    # first has screened the family, and must get the first screening, not a demand for a reason.
    family = family_in_state("referred", site=oei, by=alice)
    client = logged_in(alice)
    data = {
        "token": str(uuid.uuid4()),
        "screened_on": days_ago(5).isoformat(),
        "involved_with_child_welfare": "yes",
        "harmful_circumstances": "yes",
        "struggle_areas": ["finances", "housing"],
    }
    first = client.post(reverse("families:screen", args=[family.study_id]), data)
    assert first.status_code == 302
    second = client.post(reverse("families:screen", args=[family.study_id]), data)
    assert second.status_code == 302
    assert second["Location"] == first["Location"]
    assert family.screenings.count() == 1


# --- Household correction ---------------------------------------------------------------------------


@st.composite
def household_corrections(draw) -> dict[str, list[str]]:
    parent = st.one_of(st.integers(1900, TODAY.year).map(str), st.just(""))
    child = st.one_of(form_dates(date(1995, 1, 1), TODAY), st.just(""))
    parents = draw(st.lists(parent, min_size=draw(st.sampled_from([0, 1, 1, 2])), max_size=4))
    children = draw(st.lists(child, min_size=draw(st.sampled_from([0, 1, 1, 2])), max_size=5))
    valid = {
        "reason": [draw(st.one_of(st.just("Birth year mistyped"), st.text(max_size=60)))],
        **household_rows("parents", "birth_year", parents, draw(st.sampled_from([None, None, None, 0, 7]))),
        **household_rows("children", "birth_date", children, draw(st.sampled_from([None, None, None, 0, 14]))),
    }
    return draw(spoiled(valid, ["parents-INITIAL_FORMS", "children-3-birth_date"]))


def household_of(family: Family) -> tuple[list, list]:
    return (
        list(family.parents.order_by("pk").values_list("pk", "birth_year")),
        list(family.children.order_by("pk").values_list("pk", "birth_date")),
    )


@pytest.fixture(params=["referred", "eligible"])
def family_to_correct(request, alice, oei) -> Family:
    return family_in_state(request.param, site=oei, by=alice)


@FORM_SETTINGS
@given(data=household_corrections())
def test_it_corrects_the_whole_household_or_nothing_whatever_is_posted(alice, family_to_correct, people, data):
    family = Family.objects.get(pk=family_to_correct.pk)
    url = reverse("families:household", args=[family.study_id])
    payload = fill_in(data, people)
    with transaction.atomic():
        client = logged_in(alice)
        before = trial_state()
        household_before = household_of(family)
        response = client.post(url, payload)
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = trial_state()
        if response.status_code == 302:
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            parents = list(family.parents.values_list("birth_year", flat=True))
            children = list(family.children.values_list("birth_date", flat=True))
            assert 1 <= len(parents) <= 4 and 1 <= len(children) <= 12
            changed = household_before != household_of(family)
            family.refresh_from_db()
            if changed and family_to_correct.status != FamilyStatus.REFERRED:
                assert family.status == FamilyStatus.REFERRED, "a changed household kept its old screening result"
            assert after["Family"] == before["Family"] and after["Screening"] == before["Screening"]
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)
