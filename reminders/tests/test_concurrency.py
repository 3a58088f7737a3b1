"""PostgreSQL: sweeps running at the same moment (two beats, two workers, a cron job beside the beat) never make a
reminder twice, and none of them fails."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection

from families.tests.factories import family_in_state
from followups.models import Assessment
from notifications.models import Message
from reminders import services
from reminders.tests.factories import person
from trial.roles import Role

pytestmark = pytest.mark.postgres

THREAD_TIMEOUT = 60
DAY = date(2027, 3, 10)


def run_together(count: int, work) -> tuple[list, list]:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = [None] * count

    def thread_main(i: int) -> None:
        try:
            barrier.wait(timeout=THREAD_TIMEOUT)
            results[i] = work(i)
        except Exception as error:  # the test inspects every thread's outcome
            errors[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return results, errors


def test_sweeps_at_the_same_moment_make_each_reminder_once(transactional_db, postgres, oei, alice):
    assessors = [person(f"assessor{i}", Role.OUTCOME_ASSESSOR, sites=[oei]) for i in range(3)]
    families = 20
    for _ in range(families):
        family = family_in_state("consented", site=oei, by=alice)
        Assessment.objects.create(
            family=family, months=3, opens_on=DAY, target_on=DAY, closes_on=DAY + timedelta(days=42)
        )
    threads = 8
    results, errors = run_together(threads, lambda _i: services.sweep(DAY).total)
    assert errors == [None] * threads
    made = Message.objects.filter(kind=services.OPEN)
    assert made.count() == families * len(assessors)
    assert made.values("about", "recipient").distinct().count() == families * len(assessors)
    # What each sweep says it made adds up to at least every reminder (two may both count a row the unique key
    # kept once), and the rows are there once whatever they said.
    assert sum(results) >= families * len(assessors)
