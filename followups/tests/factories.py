"""Follow-up assessments recorded through the services like real ones."""

import uuid
from datetime import date

from families.models import Family
from followups import services
from followups.models import Assessment, AssessmentStatus
from followups.schedule import BASELINE
from trial.roles import Role
from trial.tests.factories import UserFactory


def site_assessor(site):
    """The factories' outcome assessor at `site` (made once)."""
    return UserFactory(username=f"factory-assessor-{site.code.lower()}", roles=[Role.OUTCOME_ASSESSOR], sites=[site])


def record_baseline(family: Family, *, by=None, on: date | None = None, status: str = AssessmentStatus.COMPLETED):
    """The family's baseline recorded (completed by default, on the consent's day) by `by`, or by the site's
    factory assessor: what a consented family needs before it is randomised with the trial's default rule."""
    baseline = Assessment.objects.get(family=family, months=BASELINE)
    return services.assessment_record(
        assessment=baseline,
        outcome=services.Outcome(
            status=status,
            done_on=on or baseline.opens_on,
            mode="home_visit" if status in ("completed", "partly") else "",
            questionnaires=["SDQ"] if status in ("completed", "partly") else [],
            details="Only the SDQ." if status == "partly" else "",
            reason="not_reached" if status == "missed" else "",
        ),
        recorded_by=by or site_assessor(family.site),
        token=uuid.uuid4(),
    )


def record(assessment: Assessment, *, by, **outcome) -> Assessment:
    values = {
        "status": AssessmentStatus.COMPLETED,
        "done_on": assessment.target_on,
        "mode": "phone",
        "questionnaires": ["SDQ"],
        "arm_guess": "" if assessment.months == BASELINE else "dont_know",
    }
    values |= outcome
    correction_reason = values.pop("correction_reason", "")
    token = values.pop("token", None) or uuid.uuid4()
    return services.assessment_record(
        assessment=assessment,
        outcome=services.Outcome(**values),
        recorded_by=by,
        token=token,
        correction_reason=correction_reason,
    )
