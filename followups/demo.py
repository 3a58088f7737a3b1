"""The demo trial's follow-ups (trial.demo).

Before the randomisation step (position 30) every consented family gets its baseline recorded by the demo assessor,
so that the demo randomises with the baseline rule on. After the Family Partner's step, a few families of Øvre Eiker
are made as they would have been months ago (consented, baseline, randomised, through the services, with the clock
set back), so that the grid shows completed assessments, one overdue and one booked.
"""

import uuid
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

from django.utils import timezone

from families import services as family_services
from families.models import Family, FamilyStatus, ReferralSource, StruggleArea
from followups import services
from followups.models import Assessment, AssessmentStatus
from followups.schedule import BASELINE
from randomization import services as randomisation
from trial.demo import Demo


@contextmanager
def _days_back(days: int):
    """What the block makes is made as if it were `days` days ago (randomisation times cannot be set later)."""
    moment = timezone.now() - timedelta(days=days)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _record_baseline(family: Family, assessor) -> None:
    baseline = Assessment.objects.get(family=family, months=BASELINE)
    if baseline.status != AssessmentStatus.SCHEDULED:
        return
    services.assessment_record(
        assessment=baseline,
        outcome=services.Outcome(
            status=AssessmentStatus.COMPLETED,
            done_on=baseline.opens_on,
            mode="home_visit",
            questionnaires=["SDQ", "PSI-SF"],
        ),
        recorded_by=assessor,
        token=uuid.uuid4(),
    )


def record_demo_baselines(demo: Demo) -> str:
    assessor = demo.users["assessor"]
    families = Family.objects.filter(status=FamilyStatus.CONSENTED, site__members=assessor).select_related("site")
    count = 0
    for family in families:
        _record_baseline(family, assessor)
        count += 1
    return f"Baselines recorded for {count} consented families."


def _family_randomised_days_ago(demo: Demo, days: int) -> Family:
    site, researcher, assessor = demo.sites["OEI"], demo.users["researcher"], demo.users["assessor"]
    with _days_back(days + 20):
        today = timezone.localdate()
        family = family_services.family_register(
            site=site,
            referral_date=today,
            referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
            parent_birth_years=[1989],
            child_birth_dates=[today - timedelta(days=365 * 6)],
            identifiers=family_services.Identifiers(contact_name="Demo Forelder", phone="913 45 678"),
            registered_by=researcher,
            token=uuid.uuid4(),
        )
    with _days_back(days + 14):
        family_services.family_screen(
            family=family,
            screened_on=timezone.localdate(),
            involved_with_child_welfare=True,
            harmful_circumstances=True,
            struggle_areas=[StruggleArea.FINANCES, StruggleArea.HOUSING],
            screened_by=researcher,
            token=uuid.uuid4(),
        )
    with _days_back(days + 7):
        family_services.family_record_consent(
            family=family,
            decided_on=timezone.localdate(),
            form_version="v1",
            obtained_by=researcher,
            recorded_by=researcher,
            token=uuid.uuid4(),
        )
        _record_baseline(family, assessor)
    with _days_back(days):
        randomisation.family_randomise(family=family, confirmed_site=site, randomised_by=researcher)
    return Family.objects.get(pk=family.pk)


def load_demo_follow_ups(demo: Demo) -> str:
    assessor = demo.users["assessor"]
    # Randomised 150 days ago: the 3-month window closed about three weeks ago. One completed in its window, one
    # left overdue (for the journey from the grid).
    completed = _family_randomised_days_ago(demo, 150)
    first = Assessment.objects.get(family=completed, months=3)
    services.assessment_record(
        assessment=first,
        outcome=services.Outcome(
            status=AssessmentStatus.COMPLETED,
            done_on=first.target_on,
            mode="phone",
            questionnaires=["SDQ"],
            arm_guess="dont_know",
        ),
        recorded_by=assessor,
        token=uuid.uuid4(),
    )
    overdue = _family_randomised_days_ago(demo, 140)
    # Randomised 85 days ago: the 3-month window is open; booked for next week.
    booked = _family_randomised_days_ago(demo, 85)
    services.assessment_book(
        assessment=Assessment.objects.get(family=booked, months=3),
        booked_on=timezone.localdate() + timedelta(days=7),
        booked_by=assessor,
    )
    return (
        f"Follow-ups: {completed.study_id} completed at 3 months, {overdue.study_id} overdue, {booked.study_id} booked."
    )
