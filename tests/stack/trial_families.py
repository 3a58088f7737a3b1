"""Families of a stack test's own, made in the stack's database through the trial's services (`manage.py shell`, as an
operator would), so that a journey never depends on the demo's state or on another test's order.

Only the steps a journey does not click through itself are made here: the journeys click the rest.
"""

import json

from tests.stack.harness import ProductionStack, StackError

# Runs in `manage.py shell -c` with the stack's production settings; prints one JSON line.
MAKE_FAMILY = """
import json, uuid
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from families import services as families
from families.models import Family, ReferralSource, StruggleArea
from followups import services as followups
from followups.models import Assessment, AssessmentStatus
from followups.schedule import BASELINE
from randomization import services as randomisation
from trial.models import Site

STATE, SITE, ARM = {state!r}, {site!r}, {arm!r}
users = {{user.username: user for user in get_user_model().objects.filter(username__in=["researcher", "assessor"])}}
researcher, assessor = users["researcher"], users["assessor"]
site = Site.objects.get(code=SITE)
today = timezone.localdate()


def consented():
    family = families.family_register(
        site=site, referral_date=today - timedelta(days=10), referral_source=ReferralSource.CHILD_WELFARE_CASEWORKER,
        parent_birth_years=[1988], child_birth_dates=[today - timedelta(days=365 * 6)],
        identifiers=families.Identifiers(contact_name="Stack Forelder", phone="913 45 678"),
        registered_by=researcher, token=uuid.uuid4(),
    )
    families.family_screen(
        family=family, screened_on=today - timedelta(days=5), involved_with_child_welfare=True,
        harmful_circumstances=True, struggle_areas=[StruggleArea.FINANCES, StruggleArea.HOUSING],
        screened_by=researcher, token=uuid.uuid4(),
    )
    families.family_record_consent(
        family=family, decided_on=today - timedelta(days=2), form_version="v1", obtained_by=researcher,
        recorded_by=researcher, token=uuid.uuid4(),
    )
    return family


def record_baseline(family):
    baseline = Assessment.objects.get(family=family, months=BASELINE)
    followups.assessment_record(
        assessment=baseline,
        outcome=followups.Outcome(
            status=AssessmentStatus.COMPLETED, done_on=today, mode="home_visit", questionnaires=["SDQ"]
        ),
        recorded_by=assessor, token=uuid.uuid4(),
    )


def randomised():
    family = consented()
    record_baseline(family)
    randomisation.family_randomise(family=family, confirmed_site=site, randomised_by=researcher)
    return Family.objects.get(pk=family.pk)


if STATE == "baseline":
    family = Family.objects.get(study_id={study_id!r})
    record_baseline(family)
elif STATE == "consented":
    family = consented()
    record_baseline(family)
else:
    # The arm is the list's to draw: families are randomised until one draws the arm asked for.
    for _attempt in range(12):
        family = randomised()
        if not ARM or family.allocation.arm == ARM:
            break
    else:
        raise SystemExit("no family drew " + ARM)
    if STATE == "assigned":
        from visits import services as visits
        from visits.models import PartnerProfile

        profile = PartnerProfile.objects.get(user__username="partner")
        visits.family_assign(family=family, partner=profile, started_on=today, assigned_by=researcher)
months = {{a.months: a.pk for a in Assessment.objects.filter(family=family)}}
print(json.dumps({{"study_id": family.study_id, "assessments": months}}))
"""


def make_family(stack: ProductionStack, state: str, *, site: str = "OEI", arm: str = "", study_id: str = "") -> dict:
    """A family of `site` in `state`: "consented" (baseline recorded: ready to randomise), "randomised" (drawn `arm`
    if given), "assigned" (randomised to the intervention and assigned to the demo partner), or "baseline" (the
    baseline of the consented family `study_id` recorded by the demo assessor). Returns its study id and its
    assessments' ids by month."""
    if state == "assigned":
        arm = "intervention"  # only an intervention family has a Family Partner
    code = MAKE_FAMILY.format(state=state, site=site, arm=arm, study_id=study_id)
    output = stack.manage("shell", "-c", code).stdout.strip().splitlines()
    if not output:
        raise StackError(f"making a {state} family printed nothing")
    made = json.loads(output[-1])
    made["assessments"] = {int(months): pk for months, pk in made["assessments"].items()}
    return made
