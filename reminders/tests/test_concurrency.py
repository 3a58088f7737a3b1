"""PostgreSQL: sweeps running at the same moment (two beats, two workers, a cron job beside the beat) never make a
reminder twice, and none of them fails."""

from datetime import date, timedelta

import pytest

from families.tests.factories import family_in_state
from families.tests.test_concurrency import run_together
from followups.models import Assessment
from notifications.models import Message
from reminders import services
from reminders.tests.factories import person
from trial.roles import Role

pytestmark = pytest.mark.postgres

DAY = date(2027, 3, 10)


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
