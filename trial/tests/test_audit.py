"""create_as and update_as write, in one statement, the history row that simple-history itself writes."""

import pytest

from families.models import Family
from families.tests.factories import family_in_state
from randomization import lists
from randomization.models import Allocation, AllocationEntry
from trial.audit import _HISTORY_OWN_FIELDS, create_as, save_as, update_as

pytestmark = pytest.mark.postgres


def copied_fields(model) -> list[str]:
    return [f.attname for f in model.history.model._meta.concrete_fields if f.name not in _HISTORY_OWN_FIELDS]


def assert_same_history(by_library, by_statement, model, *, differing: set[str]) -> None:
    """The two records' latest history rows agree on everything but what differs between the records, and
    the statement's row copies its record exactly."""
    library = model.history.filter(id=by_library.pk).latest("history_id")
    statement = model.history.filter(id=by_statement.pk).latest("history_id")
    for name in copied_fields(model):
        if name not in differing:
            assert getattr(statement, name) == getattr(library, name), name
    record = model.objects.get(pk=by_statement.pk)
    for name in copied_fields(model):
        assert getattr(statement, name) == getattr(record, name), name
    assert (statement.history_type, statement.history_user_id, statement.history_change_reason) == (
        library.history_type,
        library.history_user_id,
        library.history_change_reason,
    )
    assert abs((statement.history_date - library.history_date).total_seconds()) < 60


def test_it_writes_the_history_row_of_an_update_as_simple_history_does(postgres, oei, alice):
    by_library = family_in_state("consented", site=oei, by=alice)
    by_statement = family_in_state("consented", site=oei, by=alice)

    by_library.status = "randomised"
    save_as(by_library, alice, update_fields=["status"])
    changed = update_as(Family, by_statement.pk, changes={"status": "randomised"}, where={"site": oei.pk}, user=alice)

    assert changed is not None and changed.status == "randomised" and changed.study_id == by_statement.study_id
    assert Family.objects.get(pk=by_statement.pk).status == "randomised"
    assert_same_history(by_library, by_statement, Family, differing={"id", "number", "study_id", "registered_at"})


def test_it_writes_the_history_row_of_a_new_record_as_simple_history_does(postgres, oei, alice, dina):
    allocation_list = lists.allocation_list_generate(site=oei, generated_by=dina)
    first, second = AllocationEntry.objects.filter(allocation_list=allocation_list).order_by("position")[:2]
    families = [family_in_state("consented", site=oei, by=alice) for _ in range(2)]

    def allocation(family, entry) -> Allocation:
        return Allocation(
            family=family, entry=entry, arm="control", site=oei, position=entry.position, randomised_by=alice
        )

    by_library = allocation(families[0], first)
    save_as(by_library, alice)
    by_statement = allocation(families[1], second)
    create_as(by_statement, alice)

    assert by_statement.pk is not None and not by_statement._state.adding
    assert Allocation.objects.get(pk=by_statement.pk).family_id == families[1].pk
    assert_same_history(
        by_library, by_statement, Allocation, differing={"id", "family_id", "entry_id", "position", "randomised_at"}
    )


def test_it_changes_nothing_when_the_record_no_longer_matches(postgres, oei, lar, alice):
    family = family_in_state("consented", site=oei, by=alice)
    history = family.history.count()

    for where in ({"status": "eligible"}, {"site": lar.pk}):
        assert update_as(Family, family.pk, changes={"status": "randomised"}, where=where, user=alice) is None
    assert update_as(Family, 10**9, changes={"status": "randomised"}, user=alice) is None

    assert Family.objects.get(pk=family.pk).status == "consented"
    assert family.history.count() == history
    with pytest.raises(ValueError):
        update_as(Family, family.pk, changes={"no_such_field": 1}, user=alice)
