"""Races the Family Partner's services must win on PostgreSQL: two researchers giving the last slot at the
same moment, one family given to two partners at once, crossed reassignments, contacts that together pass
24 hours, and the assignment form posted from ten browsers at once.

Each thread has its own database connection (Django gives every thread one), so these are real concurrent
transactions; a Barrier releases the threads together (families.tests.test_concurrency.run_together).
"""

from collections import Counter

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from families.models import Family
from families.tests.factories import days_ago
from families.tests.test_concurrency import run_together
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services
from visits.models import MAX_DAY_QUARTERS, Assignment, Contact, ContactDay, InterventionPeriod, PartnerProfile
from visits.tests.factories import assigned_family, contact_input, days_back, log_contact, partner, randomised_family

pytestmark = pytest.mark.postgres

NO_FREE_SLOT = "has no free slot"
DAY_IS_FULL = "a day has at most 24 hours"


@pytest.fixture
def rolf(oei):
    """A second researcher at Øvre Eiker."""
    return UserFactory(username="rolf", roles=[Role.RESEARCHER], sites=[oei])


def active_assignments(partner_profile: PartnerProfile) -> int:
    return Assignment.objects.filter(partner=partner_profile, ended_on__isnull=True).count()


def assert_counts_right() -> None:
    """Every partner's count kept by the database is their assignments that have not ended, within capacity."""
    for profile in PartnerProfile.objects.all():
        assert profile.active_families == active_assignments(profile), profile
        assert profile.active_families <= profile.capacity, profile
    for family_id, active in Counter(
        Assignment.objects.filter(ended_on__isnull=True).values_list("family_id", flat=True)
    ).items():
        assert active == 1, f"family {family_id} has {active} active assignments"


def messages_of(error: Exception) -> list[str]:
    assert isinstance(error, ValidationError), repr(error)
    return error.messages


def full_partner(site, username: str, *, capacity: int, families: int, researcher) -> PartnerProfile:
    profile = partner(site, username, capacity=capacity)
    for _ in range(families):
        assigned_family(site, researcher=researcher, to=profile)
    profile.refresh_from_db()
    assert profile.active_families == families
    return profile


def assign_at_once(families: list[Family], to: PartnerProfile, researchers: list) -> tuple[list, list]:
    return run_together(
        len(families),
        lambda i: services.family_assign(
            family=families[i], partner=to, started_on=days_ago(0), assigned_by=researchers[i % len(researchers)]
        ),
    )


def assert_only_the_slots_were_given(results, errors, *, slots: int, to: PartnerProfile, families) -> None:
    winners = [result for result in results if result is not None]
    assert len(winners) == slots
    assert all(result.created for result in winners)
    refused = [error for error in errors if error is not None]
    assert len(refused) == len(families) - slots
    for error in refused:
        assert set(error.error_dict) == {"partner"}, repr(error)
        (message,) = messages_of(error)
        assert NO_FREE_SLOT in message
        assert f"{to.capacity} of {to.capacity} families" in message
    to.refresh_from_db()
    assert to.active_families == to.capacity == active_assignments(to)
    given = {result.assignment.family_id for result in winners}
    assert set(Assignment.objects.filter(family__in=families).values_list("family_id", flat=True)) == given
    # A family that lost the race has not started an intervention: it still waits.
    assert set(InterventionPeriod.objects.filter(family__in=families).values_list("family_id", flat=True)) == given
    assert_counts_right()


# --- The last slot ---------------------------------------------------------------------------------------------


def test_it_gives_the_last_slot_to_one_of_two_researchers_assigning_at_the_same_moment(
    transactional_db, postgres, oei, alice, rolf
):
    fiona = full_partner(oei, "fiona", capacity=5, families=4, researcher=alice)
    waiting = [randomised_family(oei, researcher=alice) for _ in range(2)]

    results, errors = assign_at_once(waiting, fiona, [alice, rolf])

    assert_only_the_slots_were_given(results, errors, slots=1, to=fiona, families=waiting)
    assert fiona.active_families == 5


def test_it_gives_the_last_slot_once_in_every_round_of_races(transactional_db, postgres, oei, alice, rolf):
    fiona = full_partner(oei, "fiona", capacity=5, families=4, researcher=alice)
    loser = randomised_family(oei, researcher=alice)
    for round_number in range(5):
        waiting = [loser, randomised_family(oei, researcher=alice)]

        results, errors = assign_at_once(waiting, fiona, [alice, rolf])

        assert_only_the_slots_were_given(results, errors, slots=1, to=fiona, families=waiting)
        (winner,) = [result.assignment for result in results if result is not None]
        (loser,) = [family for family in waiting if family.pk != winner.family_id]
        # The winner's intervention ends (another reason than "completed": it is short), freeing the slot.
        services.intervention_end(
            family=winner.family, ended_on=days_ago(0), reason="moved_away", ended_by=alice, details=""
        )
        fiona.refresh_from_db()
        assert fiona.active_families == 4, f"round {round_number}"
    assert Assignment.objects.filter(partner=fiona).count() == 4 + 5
    assert_counts_right()


def test_it_gives_two_free_slots_to_two_of_eight_researchers_assigning_at_once(
    transactional_db, postgres, oei, alice, rolf
):
    fiona = full_partner(oei, "fiona", capacity=5, families=3, researcher=alice)
    waiting = [randomised_family(oei, researcher=alice) for _ in range(8)]

    results, errors = assign_at_once(waiting, fiona, [alice, rolf])

    assert_only_the_slots_were_given(results, errors, slots=2, to=fiona, families=waiting)


def test_it_never_gives_a_partner_more_families_than_their_capacity(transactional_db, postgres, oei, alice, rolf):
    fiona = partner(oei, "fiona", capacity=3)
    waiting = [randomised_family(oei, researcher=alice) for _ in range(8)]

    results, errors = assign_at_once(waiting, fiona, [alice, rolf])

    assert_only_the_slots_were_given(results, errors, slots=3, to=fiona, families=waiting)


# --- One family, two partners ---------------------------------------------------------------------------------


def test_it_gives_a_family_one_partner_when_two_researchers_assign_it_to_two_partners_at_once(
    transactional_db, postgres, oei, alice, rolf
):
    partners = [partner(oei, "fiona"), partner(oei, "fredrik")]
    for round_number in range(5):
        family = randomised_family(oei, researcher=alice)

        results, errors = run_together(
            2,
            lambda i, family=family: services.family_assign(
                family=family, partner=partners[i], started_on=days_ago(0), assigned_by=[alice, rolf][i]
            ),
        )

        (winner,) = [result for result in results if result is not None]
        assert winner.created
        (refused,) = [error for error in errors if error is not None]
        # The second researcher finds a partner already there: changing needs a reason.
        assert set(refused.error_dict) == {"reason"}, repr(refused)
        (message,) = messages_of(refused)
        assert f"{family.study_id} already has a Family Partner ({winner.assignment.partner})" in message
        active = Assignment.objects.get(family=family, ended_on__isnull=True)
        assert active.pk == winner.assignment.pk
        assert Assignment.objects.filter(family=family).count() == 1, f"round {round_number}"
        assert InterventionPeriod.objects.filter(family=family).count() == 1
    assert sum(PartnerProfile.objects.values_list("active_families", flat=True)) == 5
    assert_counts_right()


def test_it_keeps_one_active_assignment_when_two_researchers_reassign_a_family_at_once(
    transactional_db, postgres, oei, alice, rolf
):
    fiona, fredrik, frida = partner(oei, "fiona"), partner(oei, "fredrik"), partner(oei, "frida")
    family = assigned_family(oei, researcher=alice, to=fiona)
    targets = [fredrik, frida]

    results, errors = run_together(
        2,
        lambda i: services.family_assign(
            family=family,
            partner=targets[i],
            started_on=days_ago(0),
            assigned_by=[alice, rolf][i],
            reason=f"Fiona moves away ({i})",
        ),
    )

    # The two reassignments run one after the other: each ends the assignment it found.
    assert errors == [None, None]
    assert all(result.created for result in results)
    assignments = list(Assignment.objects.filter(family=family).order_by("pk"))
    assert len(assignments) == 3
    assert [a.ended_on is None for a in assignments] == [False, False, True]
    assert assignments[0].partner_id == fiona.pk
    assert {assignments[1].partner_id, assignments[2].partner_id} == {fredrik.pk, frida.pk}
    assert_counts_right()
    assert PartnerProfile.objects.get(pk=fiona.pk).active_families == 0


# --- Crossed reassignments ------------------------------------------------------------------------------------


def test_it_swaps_two_families_between_two_partners_at_once_without_deadlock(
    transactional_db, postgres, oei, alice, rolf
):
    fiona, fredrik = partner(oei, "fiona", capacity=2), partner(oei, "fredrik", capacity=2)
    anna = assigned_family(oei, researcher=alice, to=fiona)
    bernt = assigned_family(oei, researcher=alice, to=fredrik)
    homes = {anna.pk: fiona, bernt.pk: fredrik}
    for round_number in range(5):
        moves = [(anna, homes[bernt.pk]), (bernt, homes[anna.pk])]

        results, errors = run_together(
            2,
            lambda i, moves=moves: services.family_assign(
                family=moves[i][0],
                partner=moves[i][1],
                started_on=days_ago(0),
                assigned_by=[alice, rolf][i],
                reason="Swap",
            ),
        )

        assert errors == [None, None], f"round {round_number}: {errors}"
        assert all(result.created for result in results)
        homes = {family.pk: to for family, to in moves}
        for family, to in moves:
            assert Assignment.objects.get(family=family, ended_on__isnull=True).partner_id == to.pk
        assert [PartnerProfile.objects.get(pk=p.pk).active_families for p in (fiona, fredrik)] == [1, 1]
        assert_counts_right()
    assert Assignment.objects.count() == 2 + 2 * 5


def test_it_moves_four_families_round_a_ring_of_partners_at_once_without_deadlock(
    transactional_db, postgres, oei, alice, rolf
):
    ring = [partner(oei, f"partner{i}", capacity=2) for i in range(4)]
    families = [assigned_family(oei, researcher=alice, to=profile) for profile in ring]
    for round_number in range(3):
        shift = round_number + 1

        results, errors = run_together(
            4,
            lambda i, shift=shift: services.family_assign(
                family=families[i],
                partner=ring[(i + shift) % 4],
                started_on=days_ago(0),
                assigned_by=[alice, rolf][i % 2],
                reason="Rota",
            ),
        )

        assert errors == [None] * 4, f"round {round_number}: {errors}"
        assert all(result.created for result in results)
        for i, family in enumerate(families):
            assert Assignment.objects.get(family=family, ended_on__isnull=True).partner_id == ring[(i + shift) % 4].pk
        assert [PartnerProfile.objects.get(pk=p.pk).active_families for p in ring] == [1, 1, 1, 1]
        assert_counts_right()


# --- 24 hours a day -----------------------------------------------------------------------------------------


@pytest.fixture
def worked_family(oei, alice):
    """A family randomised and assigned 30 days ago, so that contacts can fall on many days."""
    with days_back(30):
        profile = partner(oei, "fiona")
        family = assigned_family(oei, researcher=alice, to=profile)
    return family, profile.user


def day_quarters(family: Family, day) -> int:
    return ContactDay.objects.filter(family=family, day=day).values_list("quarters", flat=True).first() or 0


def assert_days_add_up(family: Family) -> None:
    logged = dict(
        Contact.objects.filter(family=family)
        .values_list("contact_date")
        .annotate(total=Sum("duration_quarters"))
        .values_list("contact_date", "total")
    )
    kept = dict(ContactDay.objects.filter(family=family, quarters__gt=0).values_list("day", "quarters"))
    assert kept == logged
    assert all(quarters <= MAX_DAY_QUARTERS for quarters in kept.values())


def test_it_logs_one_of_two_simultaneous_contacts_that_together_pass_24_hours(
    transactional_db, postgres, worked_family
):
    family, fiona = worked_family
    durations = [48, 40]  # 12 h and 10 h after 4 h: either fits, both do not
    for round_number in range(5):
        day = days_ago(round_number)
        log_contact(family, by=fiona, contact_date=day, duration_quarters=16)  # 4 h already

        results, errors = run_together(
            2, lambda i, day=day: log_contact(family, by=fiona, contact_date=day, duration_quarters=durations[i])
        )

        (logged,) = [result for result in results if result is not None]
        (refused,) = [error for error in errors if error is not None]
        assert set(refused.error_dict) == {"duration_quarters"}, repr(refused)
        (message,) = messages_of(refused)
        assert DAY_IS_FULL in message
        # It names the hours already logged when it was refused.
        assert message.startswith(f"{(16 + logged.duration_quarters) / 4:g} hours are already logged")
        assert day_quarters(family, day) == 16 + logged.duration_quarters <= MAX_DAY_QUARTERS
        assert Contact.objects.filter(family=family, contact_date=day).count() == 2
    assert_days_add_up(family)


def test_it_fills_a_day_to_exactly_24_hours_when_eight_contacts_arrive_at_once(
    transactional_db, postgres, worked_family
):
    family, fiona = worked_family
    day = days_ago(2)

    results, errors = run_together(8, lambda _i: log_contact(family, by=fiona, contact_date=day, duration_quarters=16))

    assert sum(result is not None for result in results) == 6  # six contacts of 4 h make 24 h
    refused = [error for error in errors if error is not None]
    assert len(refused) == 2
    assert all(DAY_IS_FULL in messages_of(error)[0] for error in refused)
    assert day_quarters(family, day) == MAX_DAY_QUARTERS
    assert_days_add_up(family)


def test_it_refuses_one_of_two_simultaneous_corrections_that_together_pass_24_hours(
    transactional_db, postgres, worked_family
):
    family, fiona = worked_family
    day = days_ago(3)
    first = log_contact(family, by=fiona, contact_date=day, duration_quarters=32)
    second = log_contact(family, by=fiona, contact_date=day, duration_quarters=32)
    log_contact(family, by=fiona, contact_date=day, duration_quarters=24)  # 22 h in all
    contacts = [first, second]

    results, errors = run_together(
        2,
        lambda i: services.contact_correct(
            contact=contacts[i], author=fiona, data=contact_input(contact_date=day, duration_quarters=40)
        ),
    )

    assert sum(result is not None for result in results) == 1
    (refused,) = [error for error in errors if error is not None]
    assert set(refused.error_dict) == {"duration_quarters"}
    assert DAY_IS_FULL in messages_of(refused)[0]
    assert sorted(
        Contact.objects.filter(family=family, contact_date=day).values_list("duration_quarters", flat=True)
    ) == [
        24,
        32,
        40,
    ]
    assert day_quarters(family, day) == 96
    assert_days_add_up(family)


def test_it_keeps_a_day_within_24_hours_when_a_correction_moves_a_contact_there_as_another_is_logged(
    transactional_db, postgres, worked_family
):
    family, fiona = worked_family
    day, other_day = days_ago(4), days_ago(5)
    log_contact(family, by=fiona, contact_date=day, duration_quarters=48)  # 12 h
    moving = log_contact(family, by=fiona, contact_date=other_day, duration_quarters=40)  # 10 h, to be moved

    def correct_or_log(i):
        if i == 0:
            return services.contact_correct(
                contact=moving, author=fiona, data=contact_input(contact_date=day, duration_quarters=40)
            )
        return log_contact(family, by=fiona, contact_date=day, duration_quarters=40)

    results, errors = run_together(2, correct_or_log)

    assert sum(result is not None for result in results) == 1
    (refused,) = [error for error in errors if error is not None]
    assert DAY_IS_FULL in messages_of(refused)[0]
    assert day_quarters(family, day) == 48 + 40
    assert day_quarters(family, other_day) == (40 if results[0] is None else 0)
    assert_days_add_up(family)


# --- Through the page -------------------------------------------------------------------------------------


def researchers(site, count: int) -> list[Client]:
    clients = []
    for i in range(count):
        client = Client()
        client.force_login(UserFactory(username=f"researcher{i}", roles=[Role.RESEARCHER], sites=[site]))
        clients.append(client)
    return clients


def test_it_assigns_the_last_slot_once_when_ten_browsers_post_the_assign_form_at_once(
    transactional_db, postgres, oei, alice
):
    fiona = full_partner(oei, "fiona", capacity=5, families=4, researcher=alice)
    waiting = [randomised_family(oei, researcher=alice) for _ in range(10)]
    clients = researchers(oei, 10)
    form = {"partner": str(fiona.pk), "started_on": days_ago(0).isoformat()}

    responses, errors = run_together(
        10, lambda i: clients[i].post(reverse("visits:assign", args=[waiting[i].study_id]), form)
    )

    assert errors == [None] * 10
    assert sorted(response.status_code for response in responses) == [200] * 9 + [302]
    (winner,) = [i for i, response in enumerate(responses) if response.status_code == 302]
    assert responses[winner].url == reverse("families:detail", args=[waiting[winner].study_id])
    fiona.refresh_from_db()
    refusal = escape(f"{fiona} has no free slot: 5 of 5 families already. Choose another Family Partner.")
    for i, response in enumerate(responses):
        if i != winner:
            assert refusal in response.content.decode(), f"response {i} does not say why"
    assert Assignment.objects.filter(family__in=waiting).get().family_id == waiting[winner].pk
    assert fiona.active_families == 5 == active_assignments(fiona)
    assert_counts_right()


def test_it_assigns_a_family_once_when_ten_browsers_post_the_same_assignment_at_once(
    transactional_db, postgres, oei, alice
):
    """However the threads are scheduled (a request that starts after the first one committed sees the family
    with its partner already), each of the ten is told the family has Fiona: one made the assignment, the
    others got it. None is asked why the partner changes."""
    fiona = partner(oei, "fiona")
    family = randomised_family(oei, researcher=alice)
    clients = researchers(oei, 10)
    form = {"partner": str(fiona.pk), "started_on": days_ago(0).isoformat()}

    responses, errors = run_together(
        10, lambda i: clients[i].post(reverse("visits:assign", args=[family.study_id]), form)
    )

    assert errors == [None] * 10
    assert [response.status_code for response in responses] == [302] * 10
    assert {response.url for response in responses} == {reverse("families:detail", args=[family.study_id])}
    told = sorted(str(message) for response in responses for message in get_messages(response.wsgi_request))
    assert told == [f"{family.study_id} already has {fiona} as Family Partner."] * 9 + [
        f"{family.study_id} is assigned to {fiona}."
    ]
    assert Assignment.objects.filter(family=family).count() == 1
    assert PartnerProfile.objects.get(pk=fiona.pk).active_families == 1
    assert_counts_right()


def test_a_browser_posting_the_same_assignment_after_the_first_one_committed_gets_it_too(
    transactional_db, postgres, oei, alice
):
    """The case the race above reaches only when a thread is late, made to happen every time."""
    fiona = partner(oei, "fiona")
    family = randomised_family(oei, researcher=alice)
    first, late = researchers(oei, 2)
    form = {"partner": str(fiona.pk), "started_on": days_ago(0).isoformat()}
    assert first.post(reverse("visits:assign", args=[family.study_id]), form).status_code == 302

    response = late.post(reverse("visits:assign", args=[family.study_id]), form)

    assert response.status_code == 302
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        f"{family.study_id} already has {fiona} as Family Partner."
    ]
    assert Assignment.objects.filter(family=family).count() == 1


def test_lowering_a_capacity_while_a_family_takes_the_slot_never_breaks_the_database_check(
    transactional_db, postgres, oei, alice, rolf, adam
):
    """The administrator lowers a partner's capacity (the admin's save, through partner_profile_save) while a
    researcher gives away the slot: one of them wins with a message, never an IntegrityError (a 500)."""
    for round_number in range(4):
        fiona = full_partner(oei, f"fiona{round_number}", capacity=5, families=4, researcher=alice)
        family = randomised_family(oei, researcher=rolf)

        def lower_capacity(fiona=fiona):
            profile = PartnerProfile.objects.get(pk=fiona.pk)  # as the admin's form read it
            profile.capacity = 4
            services.partner_profile_save(profile=profile, saved_by=adam)
            return "lowered"

        def assign(family=family, fiona=fiona):
            return services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=rolf)

        results, errors = run_together(2, lambda i: lower_capacity() if i == 0 else assign())

        assert not [error for error in errors if error is not None and not isinstance(error, ValidationError)]
        assert sum(result is not None for result in results) == 1, (results, errors)
        fiona.refresh_from_db()
        if results[0] == "lowered":
            assert (fiona.capacity, fiona.active_families) == (4, 4)
            assert NO_FREE_SLOT in " ".join(messages_of(errors[1]))
        else:
            assert (fiona.capacity, fiona.active_families) == (5, 5)
            assert "reassign some first" in " ".join(messages_of(errors[0]))
        assert_counts_right()


# --- Voiding ------------------------------------------------------------------------------------------------


def test_a_contact_voided_while_its_author_corrects_it_is_never_changed_after_the_void(
    transactional_db, postgres, worked_family, alice
):
    """The void and the correction queue on the contact's row: either the correction comes first and is then voided,
    or the void comes first and the correction is told the contact is voided. Never a change after the void (the
    database would refuse it: an IntegrityError, a 500), and the day's total always counts what is not voided."""
    family, fiona = worked_family
    for round_number in range(5):
        day = days_ago(6 + round_number)
        contact = log_contact(family, by=fiona, contact_date=day, duration_quarters=8)

        _results, errors = run_together(
            2,
            lambda i, contact=contact, day=day: (
                services.contact_void(contact=contact, voided_by=alice, reason="Logged twice")
                if i == 0
                else services.contact_correct(
                    contact=contact, author=fiona, data=contact_input(contact_date=day, duration_quarters=4)
                )
            ),
        )

        assert errors[0] is None, errors
        assert errors[1] is None or messages_of(errors[1]) == ["A voided contact cannot be corrected."], errors
        stored = Contact.objects.get(pk=contact.pk)
        assert stored.voided_at is not None
        assert stored.duration_quarters == (8 if errors[1] else 4), f"round {round_number}"
        types = list(Contact.history.filter(id=contact.pk).order_by("history_id").values_list("voided_at", flat=True))
        assert types[-1] is not None and all(voided is None for voided in types[:-1]), "nothing after the void"
        assert day_quarters(family, day) == 0
    assert_days_add_up_without_voids(family)


def test_a_void_frees_its_hours_for_a_contact_logged_at_the_same_moment(
    transactional_db, postgres, worked_family, alice
):
    family, fiona = worked_family
    for round_number in range(5):
        day = days_ago(12 + round_number)
        log_contact(family, by=fiona, contact_date=day, duration_quarters=48)
        mistaken = log_contact(family, by=fiona, contact_date=day, duration_quarters=48)  # the day is full

        _results, errors = run_together(
            2,
            lambda i, mistaken=mistaken, day=day: (
                services.contact_void(contact=mistaken, voided_by=alice, reason="Logged twice")
                if i == 0
                else log_contact(family, by=fiona, contact_date=day, duration_quarters=40)
            ),
        )

        assert errors[0] is None, errors
        # Logged after the void: it fits; before it: the day was full.
        assert errors[1] is None or DAY_IS_FULL in messages_of(errors[1])[0], errors
        assert day_quarters(family, day) == 48 + (40 if errors[1] is None else 0), f"round {round_number}"
    assert_days_add_up_without_voids(family)


def assert_days_add_up_without_voids(family: Family) -> None:
    logged = dict(
        Contact.objects.filter(family=family, voided_at__isnull=True)
        .values_list("contact_date")
        .annotate(total=Sum("duration_quarters"))
        .values_list("contact_date", "total")
    )
    kept = dict(ContactDay.objects.filter(family=family, quarters__gt=0).values_list("day", "quarters"))
    assert kept == logged
