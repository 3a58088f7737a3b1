"""Voiding a contact logged by mistake (docs/decisions.md): its author (while they may correct it) or the site's
researchers void it with a reason; it is kept with its history, shown struck through, and left out of every sum:
the database's daily totals, and so the 24-hour day, every week's hours and the intervention's last contact.
Voiding is final: a voided contact is never corrected nor restored, in the service and in the database."""

import uuid
from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from families import services as family_services
from families.tests.factories import days_ago
from visits import selectors, services, weeks
from visits.models import Contact, ContactDay, InterventionPeriod, PartnerProfile
from visits.tests.factories import assigned_family, contact_input, days_back, log_contact

REASON = "Logged on the wrong family: this visit was with OEI-002"


@pytest.fixture
def family(oei, alice, fiona):
    """Fiona's family for 20 days."""
    with days_back(20):
        return assigned_family(oei, researcher=alice, to=fiona)


def day_total(family, day: date) -> int:
    return ContactDay.objects.filter(family=family, day=day).values_list("quarters", flat=True).first() or 0


def void(contact, *, by, reason: str = REASON):
    return services.contact_void(contact=contact, voided_by=by, reason=reason)


def assert_days_count_only_contacts_not_voided(family) -> None:
    sums: dict[date, int] = {}
    for day, quarters in Contact.objects.filter(family=family, voided_at__isnull=True).values_list(
        "contact_date", "duration_quarters"
    ):
        sums[day] = sums.get(day, 0) + quarters
    stored = {day: q for day, q in ContactDay.objects.filter(family=family).values_list("day", "quarters") if q}
    assert stored == sums


# --- The service ----------------------------------------------------------------------------------------------


def test_its_author_voids_a_contact_and_its_hours_leave_the_day_and_the_week(family, fiona):
    day = days_ago(2)
    kept = log_contact(family, by=fiona.user, contact_date=day, duration_quarters=4)
    mistaken = log_contact(family, by=fiona.user, contact_date=day, duration_quarters=8)
    assert day_total(family, day) == 12

    voided, changed = void(mistaken, by=fiona.user)

    assert changed is True
    stored = Contact.objects.get(pk=mistaken.pk)
    assert (stored.voided_by, stored.void_reason, stored.duration_quarters) == (fiona.user, REASON, 8)
    assert stored.voided_at is not None and voided.is_voided
    assert day_total(family, day) == 4
    week = weeks.week_of(day)
    assert selectors.week_quarters([family.pk], week, week)[(family.pk, week.start)] == 4
    last = Contact.history.filter(id=mistaken.pk).latest("history_date")
    assert (last.history_type, last.history_change_reason, last.history_user) == ("~", REASON, fiona.user)
    assert Contact.objects.get(pk=kept.pk).voided_at is None
    assert_days_count_only_contacts_not_voided(family)


def test_the_sites_researcher_voids_a_contact(family, fiona, alice):
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(1), duration_quarters=6)

    void(contact, by=alice, reason="Fiona logged it twice")

    assert Contact.objects.get(pk=contact.pk).voided_by == alice
    assert day_total(family, days_ago(1)) == 0


@pytest.mark.parametrize("reason", ["", "   "])
def test_voiding_needs_a_reason(family, fiona, reason):
    contact = log_contact(family, by=fiona.user)

    with pytest.raises(ValidationError) as refused:
        void(contact, by=fiona.user, reason=reason)

    assert refused.value.message_dict == {"reason": ["Say why the contact is voided."]}
    assert Contact.objects.get(pk=contact.pk).voided_at is None


@pytest.mark.parametrize("who", ["gunnar", "bob", "carol", "paula", "frank"])
def test_nobody_else_voids_a_contact(request, family, fiona, who):
    contact = log_contact(family, by=fiona.user)
    user = request.getfixturevalue(who)
    user = user.user if isinstance(user, PartnerProfile) else user

    with pytest.raises(PermissionDenied):
        void(contact, by=user)

    assert Contact.objects.get(pk=contact.pk).voided_at is None


def test_the_new_partner_does_not_void_the_former_partners_contact(oei, alice, family, fiona, gunnar):
    contact = log_contact(family, by=fiona.user)
    services.family_assign(family=family, partner=gunnar, started_on=days_ago(0), assigned_by=alice, reason="Move")

    with pytest.raises(PermissionDenied):
        void(contact, by=gunnar.user)


def test_voiding_is_final_the_contact_is_never_corrected_again(family, fiona):
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    void(contact, by=fiona.user)

    with pytest.raises(ValidationError) as refused:
        services.contact_correct(
            contact=Contact.objects.get(pk=contact.pk), author=fiona.user, data=contact_input(duration_quarters=4)
        )

    assert refused.value.messages == ["A voided contact cannot be corrected."]
    assert Contact.objects.get(pk=contact.pk).duration_quarters == 8
    assert day_total(family, contact.contact_date) == 0


def test_voiding_twice_keeps_the_first_void(family, fiona, alice):
    contact = log_contact(family, by=fiona.user)
    void(contact, by=fiona.user)
    history = Contact.history.count()

    again, changed = void(contact, by=alice, reason="Double entry")

    assert changed is False
    assert (again.voided_by, again.void_reason) == (fiona.user, REASON)
    assert Contact.history.count() == history


def test_the_24_hours_of_a_day_leave_out_a_voided_contact(family, fiona):
    day = days_ago(3)
    log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    mistaken = log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48)
    with pytest.raises(ValidationError, match="a day has at most 24 hours"):
        log_contact(family, by=fiona.user, contact_date=day, duration_quarters=4)

    void(mistaken, by=fiona.user)

    assert log_contact(family, by=fiona.user, contact_date=day, duration_quarters=48).duration_quarters == 48
    assert day_total(family, day) == 96
    assert_days_count_only_contacts_not_voided(family)


def test_an_intervention_may_end_before_a_voided_contact(family, fiona, alice):
    log_contact(family, by=fiona.user, contact_date=days_ago(10))
    mistaken = log_contact(family, by=fiona.user, contact_date=days_ago(1))
    void(mistaken, by=alice)

    period = services.intervention_end(
        family=family, ended_on=days_ago(5), reason="moved_away", details="", ended_by=alice
    )

    assert period.ended_on == days_ago(5)


def test_a_withdrawal_ends_the_intervention_without_waiting_for_a_voided_contact(family, fiona, alice):
    mistaken = log_contact(family, by=fiona.user, contact_date=days_ago(1))
    void(mistaken, by=alice)

    family_services.family_withdraw(
        family=family,
        withdrawn_on=days_ago(5),
        reason="moved_away",
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )

    assert InterventionPeriod.objects.get(family=family).ended_on == days_ago(5)


def test_the_partners_home_and_the_weeks_leave_out_a_voided_contact(family, fiona):
    today = weeks.today()
    mistaken = log_contact(family, by=fiona.user, contact_date=today, duration_quarters=8)
    void(mistaken, by=fiona.user)

    (row,) = selectors.partner_families(fiona, today)

    assert row.this_week.quarters == 0
    assert row.last_contact is None
    assert [dose.quarters for dose in selectors.family_weeks(family, today)] == [0] * len(
        selectors.family_weeks(family, today)
    )


# --- The database ---------------------------------------------------------------------------------------------


def raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_databases_daily_totals_follow_voids_made_behind_the_services_back(family, fiona, alice):
    day, other_day = days_ago(4), days_ago(5)
    first = log_contact(family, by=fiona.user, contact_date=day, duration_quarters=8)
    second = log_contact(family, by=fiona.user, contact_date=day, duration_quarters=4)

    raw(
        "UPDATE visits_contact SET voided_at = %s, voided_by_id = %s, void_reason = %s WHERE id = %s",
        [timezone.now(), alice.pk, "raw", first.pk],
    )
    assert day_total(family, day) == 4
    # A correction that moves the other contact still counts it on its new day.
    raw("UPDATE visits_contact SET contact_date = %s WHERE id = %s", [other_day, second.pk])
    assert (day_total(family, day), day_total(family, other_day)) == (0, 4)
    # A contact inserted already voided counts nothing; deleting a voided contact takes nothing away.
    voided_on_insert = Contact(
        family=family,
        author=fiona.user,
        contact_date=other_day,
        duration_quarters=12,
        kind="home_visit",
        elements=["home_visitation"],
        submission_token=uuid.uuid4(),
        voided_at=timezone.now(),
        voided_by=alice,
        void_reason="raw",
    )
    voided_on_insert.save()
    assert day_total(family, other_day) == 4
    raw("DELETE FROM visits_historicalcontact WHERE id = %s", [voided_on_insert.pk])
    raw("DELETE FROM visits_contact WHERE id = %s", [voided_on_insert.pk])
    assert day_total(family, other_day) == 4
    assert_days_count_only_contacts_not_voided(family)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("duration_quarters", 4),
        ("contact_date", "other day"),
        ("voided_at", None),
        ("void_reason", "Another reason"),
    ],
)
def test_the_database_refuses_any_change_to_a_voided_contact(family, fiona, alice, column, value):
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(4), duration_quarters=8)
    void(contact, by=alice)
    if value == "other day":
        value = days_ago(6)

    with pytest.raises(IntegrityError), transaction.atomic():
        raw(f"UPDATE visits_contact SET {column} = %s WHERE id = %s", [value, contact.pk])  # noqa: S608 (our own columns)

    stored = Contact.objects.get(pk=contact.pk)
    assert (stored.duration_quarters, stored.contact_date, stored.void_reason) == (8, days_ago(4), REASON)
    assert day_total(family, days_ago(4)) == 0


@pytest.mark.parametrize(
    "columns",
    [
        {"voided_at": "now", "voided_by_id": None, "void_reason": "No one"},
        {"voided_at": "now", "voided_by_id": "alice", "void_reason": ""},
        {"voided_at": None, "voided_by_id": "alice", "void_reason": ""},
    ],
    ids=["without who", "without a reason", "without when"],
)
def test_the_database_refuses_a_void_without_its_time_person_and_reason(family, fiona, alice, columns):
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(4), duration_quarters=8)
    values = {
        name: timezone.now() if value == "now" else alice.pk if value == "alice" else value
        for name, value in columns.items()
    }

    with pytest.raises(IntegrityError), transaction.atomic():
        raw(
            "UPDATE visits_contact SET voided_at = %s, voided_by_id = %s, void_reason = %s WHERE id = %s",
            [values["voided_at"], values["voided_by_id"], values["void_reason"], contact.pk],
        )

    assert Contact.objects.get(pk=contact.pk).voided_at is None
    assert day_total(family, days_ago(4)) == 8


# --- The pages ------------------------------------------------------------------------------------------------


def void_url(contact) -> str:
    return reverse("visits:contact_void", args=[contact.pk])


def work_url(family) -> str:
    return reverse("visits:family", args=[family.study_id])


def test_the_author_voids_a_contact_from_its_page_with_a_reason(client, family, fiona):
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(1), duration_quarters=6)
    client.force_login(fiona.user)
    page = client.get(work_url(family)).content.decode()
    assert f'href="{void_url(contact)}"' in page

    refused = client.post(void_url(contact), {"reason": " "})
    assert refused.status_code == 200
    assert refused.context["form"].errors["reason"]
    assert Contact.objects.get(pk=contact.pk).voided_at is None

    response = client.post(void_url(contact), {"reason": REASON})

    assert response.status_code == 302
    assert response.url == work_url(family)
    assert Contact.objects.get(pk=contact.pk).void_reason == REASON
    assert day_total(family, days_ago(1)) == 0


@pytest.mark.parametrize(("viewer", "sees_the_reason"), [("fiona", True), ("alice", True), ("paula", False)])
def test_a_voided_contact_is_shown_struck_through_and_its_reason_only_to_those_who_see_notes(
    request, client, family, fiona, viewer, sees_the_reason
):
    contact = log_contact(family, by=fiona.user, notes="Visit at home")
    void(contact, by=fiona.user)
    user = fiona.user if viewer == "fiona" else request.getfixturevalue(viewer)
    client.force_login(user)

    page = client.get(work_url(family)).content.decode()

    entry = page[page.index(f'data-contact="{contact.pk}"') :].split("</article>")[0]
    assert "data-voided" in entry and "<del" in entry
    assert (REASON in entry) is sees_the_reason
    assert reverse("visits:contact_edit", args=[contact.pk]) not in entry
    assert void_url(contact) not in entry


def test_the_correction_page_of_a_voided_contact_says_it_cannot_be_corrected(client, family, fiona):
    contact = log_contact(family, by=fiona.user)
    void(contact, by=fiona.user)
    client.force_login(fiona.user)

    response = client.get(reverse("visits:contact_edit", args=[contact.pk]), follow=True)

    assert response.redirect_chain == [(work_url(family), 302)]
    assert "A voided contact cannot be corrected." in response.content.decode()


def test_the_hours_on_the_work_page_drop_when_a_contact_is_voided(client, family, fiona):
    contact = log_contact(family, by=fiona.user, contact_date=weeks.today(), duration_quarters=8)
    client.force_login(fiona.user)
    week = weeks.week_of(weeks.today()).code

    before = client.get(work_url(family))
    client.post(void_url(contact), {"reason": REASON})
    after = client.get(work_url(family))

    assert [dose.quarters for dose in before.context["weeks"] if dose.week.code == week] == [8]
    assert [dose.quarters for dose in after.context["weeks"] if dose.week.code == week] == [0]


def test_the_author_voids_a_contact_logged_long_ago_as_any_other(family, fiona):
    # A void always gives its reason, so the correction's free days do not matter to it.
    with days_back(15):
        contact = log_contact(family, by=fiona.user, contact_date=days_ago(0))
    assert services.correction_needs_reason(contact)

    void(contact, by=fiona.user)

    assert Contact.objects.get(pk=contact.pk).is_voided


def test_a_void_is_not_counted_as_a_correction(client, family, fiona):
    contact = log_contact(family, by=fiona.user, duration_quarters=8)
    services.contact_correct(contact=contact, author=fiona.user, data=contact_input(duration_quarters=6))
    void(Contact.objects.get(pk=contact.pk), by=fiona.user)
    client.force_login(fiona.user)

    (row,) = client.get(work_url(family)).context["contacts"]

    assert row[0].corrections == 1


@pytest.mark.parametrize("reason", ["\x00", "x" * 2001, "   "])
def test_a_hostile_reason_is_a_form_error_and_voids_nothing(client, family, fiona, reason):
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(1), duration_quarters=6)
    client.force_login(fiona.user)

    response = client.post(void_url(contact), {"reason": reason})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert Contact.objects.get(pk=contact.pk).voided_at is None
    assert day_total(family, days_ago(1)) == 6
