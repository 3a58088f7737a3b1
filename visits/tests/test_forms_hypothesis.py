"""Whatever a phone (or someone with curl) posts to the Family Partner's forms, the records stay whole.

Hypothesis builds a valid submission and then spoils it (families.tests.test_forms_hypothesis.spoiled): junk,
unicode, NUL bytes, huge or negative numbers, malformed dates, missing or repeated keys. For every submission:
- the answer is never a server error;
- either it redirects with exactly what one submission makes, its fields as they were posted,
- or it shows the form again with its errors visible, and nothing at all was written (no contact, no hours
  added to a day, no assignment, no end, no audit row).
Each example runs in a transaction that is rolled back, so every example starts from the same state.
"""

import uuid
from datetime import date, datetime, timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from families.models import Family
from families.tests.factories import days_ago
from families.tests.test_forms_hypothesis import form_dates, junk, spoiled
from randomization.models import Allocation
from trial.models import TrialSettings
from visits import services, weeks
from visits.models import (
    MAX_DAY_QUARTERS,
    Assignment,
    Contact,
    ContactDay,
    ContactKind,
    Element,
    EndReason,
    InterventionPeriod,
    PartnerProfile,
    PartnerStatus,
)
from visits.tests.factories import assigned_family, days_back, log_contact, partner, randomised_family

TODAY = timezone.localdate()
FORM_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What the English pages accept as a date (trial/formats/en).
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]

# --- Strategies -------------------------------------------------------------------------------------------


def mostly(valid, odd):
    """Four times in five a valid value, so that a fair share of submissions get through before spoiling."""
    return st.integers(0, 4).flatmap(lambda n: odd if n == 0 else valid)


durations = mostly(
    st.integers(1, 48).map(str),
    st.one_of(st.integers(-5, 60).map(str), st.sampled_from(["1e3", "4.0", "08", " 8", "\u0668", "9" * 40]), junk),
)
kinds = mostly(st.sampled_from(ContactKind.values), st.sampled_from(ContactKind.values).map(str.upper))
element_lists = mostly(
    st.lists(st.sampled_from(Element.values), min_size=1, max_size=3, unique=True),
    st.lists(st.one_of(st.sampled_from(Element.values), junk), max_size=6),  # none, one ticked twice, junk
)
notes = mostly(
    st.one_of(st.just(""), st.text(max_size=200), st.sampled_from(["Ærlig samtale om økonomi", "  spaces  "])),
    st.sampled_from(["\x00", "før\x00etter", "\u202e\u200b", "x" * 10001, "x" * 10000 + "  "]),
)
# Fiona's family was randomised 40 days ago: dates before that, and after today, are refused.
contact_dates = mostly(form_dates(days_ago(39), TODAY), form_dates(days_ago(50), TODAY + timedelta(days=2)))


@st.composite
def contacts(draw) -> dict[str, list[str]]:
    valid = {
        "token": [str(draw(st.uuids()))],
        "contact_date": [draw(contact_dates)],
        "duration_quarters": [draw(durations)],
        "kind": [draw(kinds)],
        "elements": draw(element_lists),
        "notes": [draw(notes)],
    }
    return draw(spoiled(valid, ["elements"]))


KEEP = "{keep}"  # the contact's own value, as the correction form shows it


@st.composite
def corrections(draw) -> dict[str, list[str]]:
    keep = st.just(KEEP)
    valid = {
        "contact_date": [draw(mostly(keep, contact_dates))],
        "duration_quarters": [draw(mostly(keep, durations))],
        "kind": [draw(mostly(keep, kinds))],
        "elements": draw(mostly(st.just([KEEP]), element_lists)),
        "notes": [draw(mostly(keep, notes))],
    }
    if draw(st.integers(0, 4)):  # mostly with a reason: an old contact's correction needs one
        valid["reason"] = [draw(mostly(st.sampled_from(["Wrong day", "  Typo "]), st.text(max_size=40)))]
    return draw(spoiled(valid, ["elements", "token"]))


@st.composite
def assignments(draw) -> dict[str, list[str]]:
    valid = {
        "partner": [draw(mostly(st.just("{freya}"), st.sampled_from(["{fiona}", "{fredrik}", "{frida}", "{lars}"])))],
        # The family waits since 40 days, or has had Fiona for 30.
        "started_on": [draw(mostly(form_dates(days_ago(29), TODAY), form_dates(days_ago(60), TODAY + timedelta(2))))],
        "reason": [draw(mostly(st.sampled_from(["Fiona moves away", " Fiona is ill "]), st.text(max_size=40)))],
        # The assignment the page was made for: as the page sends it, left out by an old form, or tampered with.
        "shown": [
            draw(
                mostly(
                    st.sampled_from(["{shown}", "{shown}", ""]),
                    st.sampled_from(["none", "{current}", "\u00b2", "\u0663", "9" * 5000, "9" * 19, "-1", " 1 "]),
                )
            )
        ],
    }
    return draw(spoiled(valid, []))


@st.composite
def ends(draw) -> dict[str, list[str]]:
    valid = {
        # The last contact was five days ago; the intervention started 120 days ago.
        "ended_on": [draw(mostly(form_dates(days_ago(5), TODAY), form_dates(days_ago(130), TODAY + timedelta(2))))],
        "reason": [draw(st.sampled_from(EndReason.values))],
        "details": [draw(mostly(st.sampled_from(["They moved to Bergen", ""]), st.text(max_size=60)))],
    }
    return draw(spoiled(valid, []))


# --- Checks -----------------------------------------------------------------------------------------------


def parsed_date(value: str) -> date | None:
    for date_format in DATE_INPUT_FORMATS:
        try:
            return datetime.strptime(value.strip(), date_format).date()
        except ValueError:
            continue
    return None


def as_posted(data: dict[str, list[str]]) -> dict[str, list[str]]:
    """With the CSRF token every browser posts with the form (the test client does not check it). An empty
    POST would be read as no submission at all (`request.POST or None`) and show the blank form."""
    return {"csrfmiddlewaretoken": ["token"], **data}


def last(payload: dict[str, list[str]], key: str) -> str:
    """The value a form reads for a one-value field: the last one sent ("" for an optional field not sent)."""
    return payload.get(key, [""])[-1]


def in_model_order(elements: list[str]) -> list[str]:
    return [element for element in Element.values if element in elements]


def contact_fields(contact: Contact) -> tuple:
    return (contact.contact_date, contact.duration_quarters, contact.kind, contact.elements, contact.notes)


def work_state(family: Family) -> dict[str, object]:
    """Everything these forms could write: contacts and their days, assignments, the period, their audit rows."""
    return {
        "contacts": sorted((contact.pk, *contact_fields(contact)) for contact in Contact.objects.filter(family=family)),
        "contact history": Contact.history.count(),
        "days": sorted(ContactDay.objects.filter(family=family).values_list("day", "quarters")),
        "assignments": list(
            Assignment.objects.order_by("pk").values_list("pk", "family_id", "partner_id", "started_on", "ended_on")
        ),
        "assignment history": Assignment.history.count(),
        "partners": list(PartnerProfile.objects.order_by("pk").values_list("pk", "active_families", "status")),
        "periods": list(
            InterventionPeriod.objects.order_by("pk").values_list("family_id", "started_on", "ended_on", "end_reason")
        ),
        "period history": InterventionPeriod.history.count(),
    }


def assert_days_add_up(family: Family) -> None:
    """The database's daily totals are the family's contacts, summed, and no day passes 24 hours."""
    logged: dict[date, int] = {}
    for contact_date, quarters in Contact.objects.filter(family=family).values_list(
        "contact_date", "duration_quarters"
    ):
        logged[contact_date] = logged.get(contact_date, 0) + quarters
    kept = dict(ContactDay.objects.filter(family=family, quarters__gt=0).values_list("day", "quarters"))
    assert kept == logged
    assert max(kept.values(), default=0) <= MAX_DAY_QUARTERS


def assert_partner_counts_right() -> None:
    for profile in PartnerProfile.objects.all():
        active = Assignment.objects.filter(partner=profile, ended_on__isnull=True).count()
        assert profile.active_families == active <= profile.capacity


def assert_refused_visibly(response, before, after) -> None:
    assert response.status_code == 200
    assert after == before, "a refused submission wrote to the database"
    form = response.context["form"]
    messages = [message for errors in form.errors.values() for message in errors]
    event("refused: " + " | ".join(sorted({message[:40] for message in messages})))
    assert messages, "the form came back without saying what is wrong"
    page = response.content.decode()
    hidden = [message for message in messages if escape(message) not in page]
    assert not hidden, f"errors not shown on the page: {hidden}"


def fill_in(data: dict[str, list[str]], people: dict[str, str]) -> dict[str, list[str]]:
    """Put the primary keys of this test's partners where the strategy left their names in braces."""
    return {key: [people.get(value, value) for value in values] for key, values in data.items()}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fiona_phone(fiona) -> Client:
    """Fiona's browser, logged in once for all the examples (outside their rolled-back transactions)."""
    return logged_in(fiona.user)


@pytest.fixture
def alice_browser(alice) -> Client:
    return logged_in(alice)


def randomised_on(family: Family) -> date:
    return timezone.localdate(Allocation.objects.get(family=family).randomised_at)


@pytest.fixture
def fiona(oei):
    return partner(oei, "fiona", first_name="Fiona")


@pytest.fixture
def worked_family(oei, alice, fiona) -> Family:
    """Fiona's family since 40 days, with 20 hours logged three days ago and a contact ten days ago."""
    with days_back(40):
        family = assigned_family(oei, researcher=alice, to=fiona)
    log_contact(family, by=fiona.user, contact_date=days_ago(3), duration_quarters=48)
    log_contact(family, by=fiona.user, contact_date=days_ago(3), duration_quarters=32)
    log_contact(family, by=fiona.user, contact_date=days_ago(10), duration_quarters=6)
    return Family.objects.get(pk=family.pk)


# --- Logging a contact --------------------------------------------------------------------------------------


@FORM_SETTINGS
@given(data=contacts())
@example(  # 20 hours are logged three days before: 4 more fit, 4¼ do not
    data={
        "token": [str(uuid.UUID(int=1))],
        "contact_date": [days_ago(3).isoformat()],
        "duration_quarters": ["17"],
        "kind": ["home_visit"],
        "elements": ["home_visitation"],
        "notes": [""],
    }
)
@example(
    data={
        "token": [str(uuid.UUID(int=2))],
        "contact_date": [days_ago(45).strftime("%d.%m.%Y")],  # before the randomisation
        "duration_quarters": ["4"],
        "kind": ["phone_video"],
        "elements": ["coordination"],
        "notes": ["før\x00etter"],
    }
)
@example(
    data={
        "token": [str(uuid.UUID(int=3))],
        "contact_date": [TODAY.isoformat()],
        "duration_quarters": ["8"],
        "kind": ["other"],
        "elements": ["ecological", "ecological"],
        "notes": ["  Ærlig samtale  "],
    }
)
def test_it_logs_one_contact_as_posted_or_nothing_whatever_is_posted(fiona, fiona_phone, worked_family, data):
    family = worked_family
    url = reverse("visits:contact_new", args=[family.study_id])
    with transaction.atomic():
        before = work_state(family)
        response = fiona_phone.post(url, as_posted(data))
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = work_state(family)
        if response.status_code == 302:
            assert response["Location"] == reverse("visits:partner_home")
            (contact,) = Contact.objects.filter(family=family).exclude(pk__in=[row[0] for row in before["contacts"]])
            assert str(contact.submission_token) == last(data, "token").strip()
            assert contact.author_id == fiona.user.pk
            assert contact.contact_date == parsed_date(last(data, "contact_date"))
            assert randomised_on(family) <= contact.contact_date <= timezone.localdate()
            assert str(contact.duration_quarters) == last(data, "duration_quarters")
            assert contact.kind == last(data, "kind")
            # As ticked, each once (a duplicate in a hand-made POST is kept once), in the model's order.
            assert contact.elements == in_model_order(data["elements"]) != []
            assert contact.notes == last(data, "notes").strip()
            assert after["contact history"] == before["contact history"] + 1
            day_before = dict(before["days"]).get(contact.contact_date, 0)
            assert dict(after["days"])[contact.contact_date] == day_before + contact.duration_quarters
            assert {k: v for k, v in after.items() if k not in ("contacts", "contact history", "days")} == {
                k: v for k, v in before.items() if k not in ("contacts", "contact history", "days")
            }
            assert_days_add_up(family)
            # A resubmission (a double click, a phone that sends again) logs nothing more.
            again = fiona_phone.post(url, as_posted(data))
            assert again.status_code == 302
            assert work_state(family) == after
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- Correcting a contact -----------------------------------------------------------------------------------


@pytest.fixture(params=["fresh", "old"])
def contact_to_correct(request, worked_family, fiona) -> Contact:
    """A contact logged just now (corrected freely), or 20 days ago (a correction needs a reason)."""
    if request.param == "fresh":
        return log_contact(
            worked_family, by=fiona.user, contact_date=days_ago(1), duration_quarters=10, notes="First visit"
        )
    with days_back(20):
        return log_contact(
            worked_family, by=fiona.user, contact_date=days_ago(0), duration_quarters=10, notes="First visit"
        )


def with_kept_values(data: dict[str, list[str]], contact: Contact) -> dict[str, list[str]]:
    shown = {
        "contact_date": [contact.contact_date.isoformat()],
        "duration_quarters": [str(contact.duration_quarters)],
        "kind": [contact.kind],
        "elements": list(contact.elements),
        "notes": [contact.notes],
    }
    return {
        key: [value for given in values for value in (shown[key] if given == KEEP else [given])]
        for key, values in data.items()
    }


@FORM_SETTINGS
@given(data=corrections())
@example(  # only the date changes, onto the day that has 20 hours: 2½ hours do not fit there
    data={
        "contact_date": [days_ago(3).isoformat()],
        "duration_quarters": ["10"],
        "kind": ["home_visit"],
        "elements": ["home_visitation", "parental_guidance"],
        "notes": [""],
        "reason": ["Wrong day"],
    }
)
@example(
    data={
        "contact_date": [days_ago(2).isoformat()],
        "duration_quarters": ["12"],
        "kind": ["home_visit"],
        "elements": ["home_visitation", "parental_guidance"],
        "notes": ["Corrected"],
    }
)
def test_it_corrects_a_contact_as_posted_or_changes_nothing_whatever_is_posted(
    fiona_phone, worked_family, contact_to_correct, data
):
    family = worked_family
    contact = Contact.objects.get(pk=contact_to_correct.pk)
    old_contact = timezone.now() - contact.recorded_at > timedelta(days=TrialSettings.current().contact_correction_days)
    url = reverse("visits:contact_edit", args=[contact.pk])
    data = with_kept_values(data, contact)
    with transaction.atomic():
        before = work_state(family)
        response = fiona_phone.post(url, as_posted(data))
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = work_state(family)
        if response.status_code == 302:
            assert response["Location"] == reverse("visits:family", args=[family.study_id])
            corrected = Contact.objects.get(pk=contact.pk)
            assert corrected.contact_date == parsed_date(last(data, "contact_date"))
            assert randomised_on(family) <= corrected.contact_date <= timezone.localdate()
            assert str(corrected.duration_quarters) == last(data, "duration_quarters")
            assert corrected.kind == last(data, "kind")
            assert corrected.elements == in_model_order(data["elements"]) != []
            assert corrected.notes == last(data, "notes").strip()
            assert (corrected.author_id, corrected.recorded_at) == (contact.author_id, contact.recorded_at)
            assert len(after["contacts"]) == len(before["contacts"])
            changed = contact_fields(corrected) != contact_fields(contact)
            event(f"changed: {changed}")
            assert after["contact history"] == before["contact history"] + changed
            if changed:
                reason = last(data, "reason").strip()
                assert corrected.history.first().history_change_reason == (reason or None)
                if old_contact:
                    assert reason, "an old contact was corrected without a reason"
            else:
                assert after == before
            assert_days_add_up(family)
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- Assigning a Family Partner ------------------------------------------------------------------------------


@pytest.fixture
def caseload(oei, lar, alice, fiona) -> dict[str, str]:
    """Partners of every kind: Fiona and Freya with free slots, Fredrik full, Frida on leave, Lars at Larvik."""
    fredrik = partner(oei, "fredrik", capacity=1)
    with days_back(50):
        assigned_family(oei, researcher=alice, to=fredrik)
    frida = partner(oei, "frida")
    frida.status = PartnerStatus.ON_LEAVE
    frida.save()
    people = {"fiona": fiona, "freya": partner(oei, "freya"), "fredrik": fredrik, "frida": frida}
    people["lars"] = partner(lar, "lars")
    return {f"{{{name}}}": str(profile.pk) for name, profile in people.items()}


@pytest.fixture(params=["waiting", "with Fiona"])
def family_to_assign(request, oei, alice, fiona) -> Family:
    """A family randomised 40 days ago that waits for its first partner, or has had Fiona for 30 days."""
    with days_back(40):
        family = randomised_family(oei, researcher=alice)
    if request.param == "with Fiona":
        with days_back(30):
            services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)
    return Family.objects.get(pk=family.pk)


@FORM_SETTINGS
@given(data=assignments())
@example(data={"partner": ["{fredrik}"], "started_on": [TODAY.isoformat()], "reason": ["Fiona moves away"]})
@example(data={"partner": ["{freya}"], "started_on": [days_ago(45).isoformat()], "reason": ["Fiona moves away"]})
@example(data={"partner": ["{freya}"], "started_on": [days_ago(5).isoformat()], "reason": ["   "]})
@example(data={"partner": ["{fiona}"], "started_on": [TODAY.isoformat()], "reason": [""], "shown": ["{shown}"]})
@example(data={"partner": ["{freya}"], "started_on": [TODAY.isoformat()], "reason": ["x"], "shown": ["9" * 5000]})
@example(data={"partner": ["{freya}"], "started_on": [TODAY.isoformat()], "reason": ["x"], "shown": ["\u00b2"]})
def test_it_assigns_the_partner_as_posted_or_changes_nothing_whatever_is_posted(
    alice, alice_browser, caseload, family_to_assign, data
):
    family = family_to_assign
    url = reverse("visits:assign", args=[family.study_id])
    current = Assignment.objects.filter(family=family, ended_on__isnull=True).first()
    # {shown}: what the page sends (the current assignment, or "none"); {current}: the current one's key.
    shown = {"{shown}": str(current.pk) if current else "none", "{current}": str(current.pk) if current else "1"}
    payload = fill_in(data, caseload | shown)
    with transaction.atomic():
        before = work_state(family)
        response = alice_browser.post(url, as_posted(payload))
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = work_state(family)
        if response.status_code == 302:
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            active = Assignment.objects.get(family=family, ended_on__isnull=True)
            assert str(active.partner_id) == last(payload, "partner")
            if current is not None and active.pk == current.pk:
                event("the partner the family already has")
                assert after == before
            else:
                assert active.started_on == parsed_date(last(payload, "started_on"))
                assert randomised_on(family) <= active.started_on <= timezone.localdate()
                assert active.assigned_by_id == alice.pk
                assert active.partner.status == PartnerStatus.ACTIVE
                assert active.partner.site_id == family.site_id
                assert len(after["assignments"]) == len(before["assignments"]) + 1
                period = InterventionPeriod.objects.get(family=family)
                if current is None:
                    assert period.started_on == active.started_on
                    assert after["periods"] == [*before["periods"], (family.pk, active.started_on, None, "")]
                else:
                    ended = Assignment.objects.get(pk=current.pk)
                    assert ended.ended_on == active.started_on >= current.started_on
                    assert ended.end_reason == last(payload, "reason").strip() != ""
                    assert after["periods"] == before["periods"]
            assert_partner_counts_right()
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)


# --- Ending the intervention --------------------------------------------------------------------------------


@pytest.fixture
def long_running_family(oei, alice, fiona) -> Family:
    """Fiona's family for 120 days (long enough to complete as planned), last seen five days ago."""
    with days_back(120):
        family = assigned_family(oei, researcher=alice, to=fiona)
    log_contact(family, by=fiona.user, contact_date=days_ago(5), duration_quarters=8)
    return Family.objects.get(pk=family.pk)


@FORM_SETTINGS
@given(data=ends())
@example(data={"ended_on": [days_ago(6).isoformat()], "reason": ["moved_away"], "details": [""]})
@example(data={"ended_on": [days_ago(100).isoformat()], "reason": ["completed"], "details": [""]})
@example(data={"ended_on": [TODAY.isoformat()], "reason": ["other"], "details": ["  "]})
def test_it_ends_the_intervention_as_posted_or_changes_nothing_whatever_is_posted(
    alice, alice_browser, fiona, long_running_family, data
):
    family = long_running_family
    url = reverse("visits:end", args=[family.study_id])
    with transaction.atomic():
        before = work_state(family)
        response = alice_browser.post(url, as_posted(data))
        event(f"answered {response.status_code}")
        assert response.status_code < 500
        after = work_state(family)
        if response.status_code == 302:
            assert response["Location"] == reverse("families:detail", args=[family.study_id])
            period = InterventionPeriod.objects.get(family=family)
            assert period.ended_on == parsed_date(last(data, "ended_on"))
            assert period.end_reason == last(data, "reason")
            assert period.end_details == last(data, "details").strip()
            assert period.ended_by_id == alice.pk
            assert days_ago(5) <= period.ended_on <= timezone.localdate()  # not before the last contact
            if period.end_reason == EndReason.COMPLETED:
                trial_settings = TrialSettings.current()
                earliest = weeks.add_months(period.started_on, trial_settings.intervention_min_months)
                latest = weeks.add_months(period.started_on, trial_settings.intervention_max_months)
                assert earliest <= period.ended_on <= latest
            if period.end_reason == EndReason.OTHER:
                assert period.end_details
            assignment = Assignment.objects.get(family=family)
            assert assignment.ended_on == period.ended_on
            assert PartnerProfile.objects.get(pk=fiona.pk).active_families == 0
            assert after["period history"] == before["period history"] + 1
            assert after["assignment history"] == before["assignment history"] + 1
            assert_partner_counts_right()
        else:
            assert_refused_visibly(response, before, after)
        transaction.set_rollback(True)
