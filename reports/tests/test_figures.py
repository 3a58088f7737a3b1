"""Every number of the feasibility report, from a trial whose flow is known family by family.

The trial (built through the services, as the pages would):
- Øvre Eiker (OEI): one family only referred (never screened); one not eligible for two criteria (child welfare,
  harmful circumstances), one for one (harmful circumstances); two declined (not interested; privacy); one eligible
  and awaiting a decision; one consented and waiting; one withdrawn before randomisation (moved away); and eight
  randomised 200 days ago (blocks of two: four per arm):
  intervention I1 (a partner, contacts, 3- and 6-month assessments done), I2 (a partner, no contact, 3-month partly
  done), I3 (waiting for a partner, 3-month overdue), I4 (a partner for one week, ended, 3-month done);
  control C1 (3-month missed), C2 (3-month refused, then lost to follow-up), C3 (3-month overdue, then withdrawn),
  C4 (3-month done outside its window).
- Larvik (LAR): one not eligible (harmful circumstances), one declined (not interested); recruitment paused since
  the first of this month.
- Lillehammer (LIL): one eligible, awaiting a decision.
"""

import uuid
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from families import services as family_services
from families.models import Family, Screening, StruggleArea
from families.tests.factories import days_ago, family_in_state, register_family
from followups import services as followup_services
from followups.models import Assessment, AssessmentStatus
from followups.tests.factories import record, record_baseline, site_assessor
from randomization import services as randomisation
from randomization.models import Arm
from randomization.tests.factories import allocation_list_for
from reports import stats
from reports.figures import DAYS_PER_MONTH, build_report
from reports.tables import Report, ReportFilters
from trial import services as trial_services
from trial.models import RecruitmentState, Site, TrialSettings
from trial.roles import Role
from trial.tests.factories import SiteFactory, UserFactory
from visits import services as visit_services
from visits.models import Contact
from visits.tests.factories import days_back, log_contact, partner
from visits.weeks import week_start

WHOLE_TRIAL = ReportFilters(site_ids=None, start=None, end=None)


def _table(report: Report, key: str) -> dict:
    """A table's rows by their first column (a code), as dicts of column key -> value."""
    table = next(t for t in report.tables if t.key == key)
    keys = [c.key for c in table.columns]
    return {row[0]: dict(zip(keys, row, strict=True)) for row in table.rows}


def _rows(report: Report, key: str) -> list[dict]:
    table = next(t for t in report.tables if t.key == key)
    keys = [c.key for c in table.columns]
    return [dict(zip(keys, row, strict=True)) for row in table.rows]


def _flow_rows(report: Report) -> dict[tuple[str, str], int]:
    return {(row["arm"], row["box"]): row["n"] for row in _rows(report, "flow")}


def _reasons(box) -> dict[str, int]:
    return {str(reason.label): reason.n for reason in box.reasons}


class KnownTrial:
    """The handles the tests need."""

    monday: date  # the Monday three weeks before this week's


@pytest.fixture
def known_trial(db) -> KnownTrial:
    oei, lar, lil = SiteFactory(code="OEI"), SiteFactory(code="LAR"), SiteFactory(code="LIL")
    researcher = UserFactory(username="ria", roles=[Role.RESEARCHER], sites=[oei, lar, lil])
    data_manager = UserFactory(username="dina", roles=[Role.DATA_MANAGER], first_name="Dina", last_name="Data")
    assessor = site_assessor(oei)
    allocation_list_for(oei, by=data_manager, block_sizes=[2], length=40)
    trial = KnownTrial()

    # Eight families randomised 200 days ago; the Family Partner's profile is as old.
    with days_back(200):
        fp = partner(oei, "fp-oei")
        randomised = []
        for _n in range(8):
            family = family_in_state("consented", site=oei, by=researcher)
            record_baseline(family)
            randomisation.family_randomise(family=family, confirmed_site=oei, randomised_by=researcher)
            randomised.append(Family.objects.select_related("allocation").get(pk=family.pk))
    intervention = [f for f in randomised if f.allocation.arm == Arm.INTERVENTION]
    control = [f for f in randomised if f.allocation.arm == Arm.CONTROL]
    assert len(intervention) == len(control) == 4
    i1, i2, i3, i4 = intervention
    c1, c2, c3, c4 = control

    # Not randomised, at OEI.
    register_family(site=oei, by=researcher)
    two_criteria = register_family(site=oei, by=researcher)
    family_services.family_screen(
        family=two_criteria,
        screened_on=days_ago(20),
        involved_with_child_welfare=False,
        harmful_circumstances=False,
        struggle_areas=[StruggleArea.FINANCES, StruggleArea.HOUSING],
        screened_by=researcher,
        token=uuid.uuid4(),
    )
    family_in_state("ineligible", site=oei, by=researcher)
    family_in_state("declined", site=oei, by=researcher)  # not interested
    declined = family_in_state("eligible", site=oei, by=researcher)
    family_services.family_record_decline(
        family=declined, decided_on=days_ago(5), reason="privacy", recorded_by=researcher, token=uuid.uuid4()
    )
    family_in_state("eligible", site=oei, by=researcher)
    family_in_state("consented", site=oei, by=researcher)
    family_in_state("withdrawn", site=oei, by=researcher)  # moved away
    # Larvik and Lillehammer.
    family_in_state("ineligible", site=lar, by=researcher)
    family_in_state("declined", site=lar, by=researcher)
    family_in_state("eligible", site=lil, by=researcher)

    # The Family Partner's work, in the last four whole weeks.
    monday = week_start(timezone.localdate()) - timedelta(weeks=3)
    trial.monday = monday
    visit_services.family_assign(family=i4, partner=fp, started_on=monday - timedelta(days=7), assigned_by=researcher)
    log_contact(i4, by=fp.user, contact_date=monday - timedelta(days=6), duration_quarters=24)
    visit_services.intervention_end(
        family=i4, ended_on=monday - timedelta(days=1), reason="family_ended", ended_by=researcher
    )
    visit_services.family_assign(family=i1, partner=fp, started_on=monday, assigned_by=researcher)
    visit_services.family_assign(family=i2, partner=fp, started_on=monday + timedelta(days=2), assigned_by=researcher)
    log_contact(i1, by=fp.user, contact_date=monday, duration_quarters=24)
    log_contact(
        i1,
        by=fp.user,
        contact_date=monday + timedelta(days=8),
        duration_quarters=8,
        kind="phone_video",
        elements=["coordination"],
    )
    mistake = log_contact(i1, by=fp.user, contact_date=monday + timedelta(days=15), duration_quarters=24)
    visit_services.contact_void(contact=mistake, voided_by=researcher, reason="Logged for the wrong family")

    # Follow-ups: the 3-month windows have closed, the 6-month ones are open.
    def at(family: Family, months: int) -> Assessment:
        return Assessment.objects.get(family=family, months=months)

    record(at(i1, 3), by=assessor, arm_guess="intervention")
    record(at(i1, 6), by=assessor, arm_guess="intervention")
    record(at(i2, 3), by=assessor, status=AssessmentStatus.PARTLY, details="No PSI-SF", arm_guess="control")
    record(at(i4, 3), by=assessor, arm_guess="dont_know")
    record(at(c1, 3), by=assessor, status=AssessmentStatus.MISSED, mode="", questionnaires=[], reason="illness")
    record(at(c2, 3), by=assessor, status=AssessmentStatus.REFUSED, mode="", questionnaires=[])
    late = at(c4, 3)
    record(
        late, by=assessor, done_on=late.closes_on + timedelta(days=1), confirm_outside_window=True, arm_guess="control"
    )
    followup_services.family_lose_to_follow_up(
        family=c2, lost_on=days_ago(1), reason="not_reached", details="", recorded_by=assessor, token=uuid.uuid4()
    )
    family_services.family_withdraw(
        family=c3,
        withdrawn_on=days_ago(0),
        reason="family_request",
        data_may_be_kept=True,
        recorded_by=researcher,
        token=uuid.uuid4(),
    )

    # Larvik paused its recruitment on the first of this month.
    lar.recruitment_state = RecruitmentState.PAUSED
    lar.recruitment_state_reason = "No Family Partner free"
    lar.save()
    first_of_month = timezone.localdate().replace(day=1)
    Site.history.filter(id=lar.pk).update(
        history_date=datetime.combine(first_of_month, time(0, 0), tzinfo=timezone.get_current_timezone())
    )

    # A progression threshold changed after the first randomisation, with its reason.
    trial_services.trial_settings_change(
        changes={"progression_consent_green": 80}, reason="Advice of the steering group", changed_by=data_manager
    )
    trial.oei, trial.lar, trial.lil = oei, lar, lil
    trial.families = {"I1": i1, "I2": i2, "I3": i3, "I4": i4, "C1": c1, "C2": c2, "C3": c3, "C4": c4}
    trial.randomised_on = timezone.localdate(i1.allocation.randomised_at)
    return trial


def test_it_counts_the_flow_before_randomisation(known_trial):
    report = build_report(WHOLE_TRIAL)
    flow = report.flow

    assert flow.assessed.n == 18
    assert flow.excluded.n == 10
    assert [(str(r.label), r.n) for r in flow.excluded.reasons] == [
        ("Not meeting inclusion criteria", 3),
        ("Declined to participate", 3),
        ("Other reasons", 4),
    ]
    assert flow.randomised.n == 8
    rows = _flow_rows(report)
    assert rows[("", "excluded.not_eligible.child_welfare")] == 1
    assert rows[("", "excluded.not_eligible.harmful_circumstances")] == 3
    assert ("", "excluded.not_eligible.parent_age") not in rows
    assert rows[("", "excluded.declined.not_interested")] == 2
    assert rows[("", "excluded.declined.privacy")] == 1
    assert rows[("", "excluded.other.awaiting_consent")] == 2
    assert rows[("", "excluded.other.consented_not_randomised")] == 1
    assert rows[("", "excluded.other.withdrawn_before_randomisation")] == 1


def test_it_counts_the_flow_of_each_arm(known_trial):
    report = build_report(WHOLE_TRIAL)
    intervention, control = report.flow.arms

    assert (intervention.arm, control.arm) == ("intervention", "control")
    assert intervention.allocated.n == 4
    assert intervention.received.n == 2  # I1, I4: a partner and a contact
    assert intervention.not_received.n == 2
    assert _reasons(intervention.not_received) == {
        "Waiting for a Family Partner": 1,
        "Assigned a Family Partner, no contact yet": 1,
    }
    assert [box.n for box in intervention.follow_ups] == [4, 3, 1, 0, 0]  # baseline, 3, 6, 12, 18 months
    assert _reasons(intervention.follow_ups[0]) == {}
    assert _reasons(intervention.follow_ups[1]) == {"Window closed, nothing recorded": 1}
    assert _reasons(intervention.follow_ups[2]) == {"Window open, not yet done": 3}
    assert _reasons(intervention.follow_ups[3]) == {"Not yet due": 4}
    assert (intervention.lost.n, intervention.withdrawn.n, intervention.analysed.n) == (0, 0, 4)

    assert control.allocated.n == 4
    assert control.received.n == 4  # usual services
    assert control.not_received.n == 0
    assert [box.n for box in control.follow_ups] == [4, 1, 0, 0, 0]
    assert _reasons(control.follow_ups[1]) == {"Missed": 1, "Refused": 1, "Window closed, nothing recorded": 1}
    assert _reasons(control.follow_ups[2]) == {
        "Stopped: withdrawn": 1,
        "Stopped: lost to follow-up": 1,
        "Window open, not yet done": 2,
    }
    assert _reasons(control.follow_ups[4]) == {
        "Stopped: withdrawn": 1,
        "Stopped: lost to follow-up": 1,
        "Not yet due": 2,
    }
    assert control.lost.n == 1
    assert _reasons(control.lost) == {"could not be reached": 1}
    assert control.withdrawn.n == 1
    assert _reasons(control.withdrawn) == {"The family asked to withdraw": 1}
    assert control.analysed.n == 4

    rows = _flow_rows(report)
    assert rows[("intervention", "assessed_3.overdue")] == 1
    assert rows[("control", "assessed_6.stopped_lost")] == 1
    assert rows[("control", "lost.not_reached")] == 1
    assert rows[("control", "withdrawn.family_request")] == 1
    assert rows[("intervention", "not_received.waiting_for_partner")] == 1
    assert rows[("intervention", "analysed")] == rows[("control", "analysed")] == 4


def test_every_check_of_the_diagram_passes_when_the_data_agree(known_trial):
    checks = build_report(WHOLE_TRIAL).flow.checks

    # 3 overall, and per arm: one per time point (5) plus allocated = received + not, analysed = allocated.
    assert len(checks) == 3 + 2 * (5 + 2)
    assert all(check.passed for check in checks), [c.detail for c in checks if not c.passed]


def test_it_shows_a_failed_check_when_an_allocation_disagrees_with_its_familys_status(known_trial):
    # A status changed behind the services' back: the family is still allocated, its status no longer says so.
    Family.objects.filter(pk=known_trial.families["C1"].pk).update(status="consented")

    report = build_report(WHOLE_TRIAL)

    failed = [check for check in report.flow.checks if not check.passed]
    assert [str(check.label) for check in failed] == ["Allocations = families whose status says randomised"]
    assert failed[0].detail == "8 = 7"
    assert report.flow.randomised.n == 8  # not "fixed"
    assert [row["passed"] for row in _rows(report, "checks") if row["passed"] != "yes"] == ["NO"]


def test_it_shows_a_failed_check_when_a_family_was_randomised_without_a_screening(known_trial):
    # The screening removed behind the services' back (the admin refuses deletion; the database does not).
    Screening.objects.filter(family=known_trial.families["C4"]).delete()

    checks = {str(c.label): c for c in build_report(WHOLE_TRIAL).flow.checks}

    assessed_check = checks["Assessed for eligibility = excluded + randomised"]
    assert not assessed_check.passed
    assert assessed_check.detail == "17 = 10 + 8"


def test_it_counts_eligibility_and_consent(known_trial):
    report = build_report(WHOLE_TRIAL)

    eligibility = _table(report, "eligibility")
    assert eligibility["screened"]["n"] == 18
    assert eligibility["eligible"]["n"] == 15
    assert eligibility["eligible"]["share"] == pytest.approx(15 / 18)
    assert eligibility["not_eligible"]["n"] == 3
    assert eligibility["failed.harmful_circumstances"]["n"] == 3
    assert eligibility["failed.child_welfare"]["n"] == 1
    assert eligibility["failed.child_welfare"]["share"] == pytest.approx(1 / 18)
    assert len(eligibility) == 5

    consent = _table(report, "consent")
    # Eligible with a decision: 3 declined, the consented one waiting, the withdrawn one, the 8 randomised.
    assert consent["eligible_with_decision"]["n"] == 13
    assert consent["consented"]["n"] == 10
    assert consent["consented"]["share"] == pytest.approx(10 / 13)
    assert consent["declined"]["n"] == 3
    assert consent["declined.not_interested"]["n"] == 2
    assert consent["declined.privacy"]["n"] == 1
    assert len(consent) == 5


def test_it_counts_retention_and_window_compliance(known_trial):
    rows = {(row["months"], row["arm"]): row for row in _rows(build_report(WHOLE_TRIAL), "retention")}

    assert len(rows) == 10
    baseline = rows[(0, "intervention")]
    assert (baseline["due"], baseline["assessed"], baseline["in_window"]) == (4, 4, 4)
    three = rows[(3, "intervention")]
    assert (three["due"], three["assessed"], three["retention"], three["in_window"]) == (4, 3, 0.75, 3)
    assert three["in_window_share"] == 1.0
    six = rows[(6, "intervention")]
    assert (six["due"], six["assessed"], six["retention"]) == (1, 1, 1.0)
    twelve = rows[(12, "intervention")]
    assert (twelve["due"], twelve["assessed"], twelve["retention"], twelve["in_window_share"]) == (0, 0, None, None)
    control_three = rows[(3, "control")]
    # Missed, refused, overdue (withdrawn after the window closed) and one done late: all due.
    assert (control_three["due"], control_three["assessed"], control_three["retention"]) == (4, 1, 0.25)
    assert (control_three["in_window"], control_three["in_window_share"]) == (0, 0.0)
    control_six = rows[(6, "control")]
    # Stopped (lost, withdrawn) while the window was open, and two open: none due yet.
    assert (control_six["due"], control_six["assessed"]) == (0, 0)


def test_it_measures_adherence_in_whole_weeks_of_the_intervention(known_trial):
    adherence = {code: row["value"] for code, row in _table(build_report(WHOLE_TRIAL), "adherence").items()}

    # I4: one whole week (6 h, on target); I1: three whole weeks (6 h, 2 h, 0 h; the voided 6 h not counted);
    # I2: from a Wednesday (5 days: 17 quarter-hours expected), then two whole weeks, no contact.
    assert adherence["family_weeks"] == 7
    assert adherence["hours_delivered"] == 14.0
    assert adherence["hours_expected"] == (6 * 24 + 17) / 4
    assert adherence["hours_per_family_week"] == 2.0
    assert adherence["weekly_target"] == 6.0
    assert adherence["weeks_on_target"] == 2
    assert adherence["share_on_target"] == pytest.approx(2 / 7)
    assert adherence["interventions_started"] == 3
    assert adherence["interventions_ended"] == 1
    assert adherence["mean_duration_months"] == round(6 / DAYS_PER_MONTH, 2)


def test_it_counts_contacts_by_kind_and_element_leaving_out_voided_ones(known_trial):
    report = build_report(WHOLE_TRIAL)

    kinds = _table(report, "contacts_by_kind")
    assert (kinds["home_visit"]["contacts"], kinds["home_visit"]["hours"]) == (2, 12.0)
    assert (kinds["phone_video"]["contacts"], kinds["phone_video"]["hours"]) == (1, 2.0)
    assert sum(row["contacts"] for row in kinds.values()) == 3
    elements = _table(report, "contacts_by_element")
    assert (elements["home_visitation"]["contacts"], elements["home_visitation"]["hours"]) == (2, 12.0)
    assert elements["parental_guidance"]["contacts"] == 2
    assert (elements["coordination"]["contacts"], elements["coordination"]["hours"]) == (1, 2.0)
    assert elements["ecological"]["contacts"] == elements["therapeutic_relationship"]["contacts"] == 0
    assert Contact.objects.filter(voided_at__isnull=False).count() == 1


def test_it_counts_the_blinding_index_per_arm_from_every_guess(known_trial):
    report = build_report(WHOLE_TRIAL)
    intervention, control = report.blinding

    # Intervention: I1 guessed right twice (3 and 6 months), I2 wrong, I4 "don't know".
    expected = stats.bang_blinding_index(2, 1, 1)
    assert (intervention.arm, intervention.guesses, intervention.index) == ("intervention", 4, 0.25)
    assert (intervention.low, intervention.high) == (expected.low, expected.high)
    assert intervention.low < 0.25 < intervention.high
    # Control: C4 guessed right; the missed and refused ones were not guessed.
    assert (control.arm, control.guesses, control.index) == ("control", 1, 1.0)
    rows = _table(report, "blinding")
    assert (rows["intervention"]["correct"], rows["intervention"]["incorrect"], rows["intervention"]["dont_know"]) == (
        2,
        1,
        1,
    )
    assert rows["control"]["correct"] == 1


def test_it_judges_the_progression_criteria(known_trial):
    report = build_report(WHOLE_TRIAL)
    criteria = {c.key: c for c in report.progression}

    recruitment = criteria["recruitment"]
    assert (recruitment.numerator, recruitment.denominator) == (8, 45)
    assert recruitment.value == pytest.approx(8 / 45)
    interval = stats.wilson_interval(8, 45)
    assert (recruitment.low, recruitment.high) == (interval.low, interval.high)
    assert (recruitment.green, recruitment.amber, recruitment.colour) == (0.75, 0.5, "red")
    consent = criteria["consent"]
    assert (consent.numerator, consent.denominator) == (10, 13)
    # 76.9 %: green at the old 70 %, amber since the threshold rose to 80 %.
    assert (consent.green, consent.colour) == (0.8, "amber")
    retention = criteria["retention"]
    assert (retention.numerator, retention.denominator, retention.value, retention.low, retention.colour) == (
        0,
        0,
        None,
        None,
        "",
    )
    adherence = criteria["adherence"]
    assert (adherence.numerator, adherence.denominator, adherence.colour) == (2, 7, "red")
    assert _table(report, "progression")["consent"]["colour"] == "amber"


def test_it_lists_threshold_changes_made_after_the_first_randomisation(known_trial):
    report = build_report(WHOLE_TRIAL)

    [change] = report.threshold_changes
    assert (change.field, change.old, change.new) == ("progression_consent_green", 70, 80)
    assert (change.changed_by, change.reason) == ("Dina Data", "Advice of the steering group")
    row = _table(report, "threshold_changes")["progression_consent_green"]
    assert (row["old"], row["new"], row["changed_on"]) == (70, 80, timezone.localdate())


def test_it_leaves_out_threshold_changes_made_before_any_randomisation(db):
    data_manager = UserFactory(username="dina", roles=[Role.DATA_MANAGER])
    trial_services.trial_settings_change(
        changes={"progression_consent_green": 80}, reason="Before recruitment", changed_by=data_manager
    )

    report = build_report(WHOLE_TRIAL)

    assert report.threshold_changes == []
    assert _rows(report, "threshold_changes") == []


def test_it_counts_recruitment_per_site_and_month_against_the_target(known_trial):
    report = build_report(WHOLE_TRIAL)
    today = timezone.localdate()
    randomised_month = known_trial.randomised_on.replace(day=1)
    first_month = (today - timedelta(days=230)).replace(day=1)  # the first referral: 30 days before randomising

    months = sorted({m.month for m in report.recruitment})
    assert months[0] == first_month and months[-1] == today.replace(day=1)
    oei = {m.month: m for m in report.recruitment if m.site_code == "OEI"}
    assert oei[randomised_month].randomised == 8
    assert sum(m.randomised for m in report.recruitment) == 8
    expected = known_trial.oei.expected_recruitment
    assert oei[randomised_month].target == pytest.approx(expected / 12)  # open all month
    lar = {m.month: m for m in report.recruitment if m.site_code == "LAR"}
    # Larvik paused on the first of this month: no target this month.
    assert lar[today.replace(day=1)].target == 0
    assert lar[first_month].target == pytest.approx(known_trial.lar.expected_recruitment / 12)

    sites = _table(report, "recruitment_by_site")
    assert list(sites) == ["LAR", "LIL", "OEI"]
    assert (sites["LAR"]["state"], sites["OEI"]["state"]) == ("paused", "open")
    lar_days = (today.replace(day=1) - first_month).days
    assert sites["LAR"]["months_open"] == round(lar_days / DAYS_PER_MONTH, 2)
    assert sites["LAR"]["randomised"] == 0
    assert sites["LAR"]["rate"] == 0.0
    oei_days = (today - first_month).days  # up to yesterday
    assert sites["OEI"]["months_open"] == round(oei_days / DAYS_PER_MONTH, 2)
    assert sites["OEI"]["rate"] == round(8 / (oei_days / DAYS_PER_MONTH), 3)


def test_it_counts_caseload_use_per_month(known_trial):
    rows = {row["month"]: row for row in _rows(build_report(WHOLE_TRIAL), "caseload")}
    today = timezone.localdate()

    this_month = rows[today.replace(day=1)]
    assert (this_month["on"], this_month["families"], this_month["capacity"]) == (today, 2, 5)  # I1 and I2 now
    assert this_month["use"] == pytest.approx(0.4)
    # The partner's profile dates from the randomisations: capacity from that month on, before it none.
    randomised_month = rows[known_trial.randomised_on.replace(day=1)]
    assert (randomised_month["families"], randomised_month["capacity"], randomised_month["use"]) == (0, 5, 0.0)
    before = [row for month, row in rows.items() if row["on"] < known_trial.randomised_on]
    assert all((row["capacity"], row["use"]) == (0, None) for row in before)


def test_it_counts_withdrawals_by_arm_and_reason(known_trial):
    rows = [(r["arm"], r["reason"], r["n"]) for r in _rows(build_report(WHOLE_TRIAL), "withdrawals")]

    assert rows == [("control", "family_request", 1), ("", "moved_away", 1)]


def test_it_counts_only_the_sites_asked_for(known_trial):
    report = build_report(ReportFilters(site_ids=frozenset({known_trial.lar.pk}), start=None, end=None))

    assert report.site_names == [str(known_trial.lar)]
    assert (report.flow.assessed.n, report.flow.excluded.n, report.flow.randomised.n) == (2, 2, 0)
    assert [r.n for r in report.flow.excluded.reasons] == [1, 1, 0]
    assert {m.site_code for m in report.recruitment} == {"LAR"}
    assert list(_table(report, "recruitment_by_site")) == ["LAR"]
    recruitment = next(c for c in report.progression if c.key == "recruitment")
    assert recruitment.denominator == known_trial.lar.expected_recruitment  # the site's, not the trial's
    assert all(b.guesses == 0 and b.index is None for b in report.blinding)
    assert all(check.passed for check in report.flow.checks)


def test_it_counts_only_families_referred_within_the_dates(known_trial):
    # The randomised families were referred 230 days ago, the others 30 days ago.
    recent = build_report(ReportFilters(site_ids=None, start=days_ago(100), end=None))
    assert (recent.flow.assessed.n, recent.flow.randomised.n) == (10, 0)
    assert _table(recent, "adherence")["family_weeks"]["value"] == 0

    early = build_report(ReportFilters(site_ids=None, start=None, end=days_ago(100)))
    assert (early.flow.assessed.n, early.flow.excluded.n, early.flow.randomised.n) == (8, 0, 8)
    months = sorted({m.month for m in early.recruitment})
    assert months[-1] == days_ago(100).replace(day=1)
    assert sum(m.randomised for m in early.recruitment) == 8


def test_it_never_puts_a_study_id_or_a_name_in_the_report(known_trial):
    report = build_report(WHOLE_TRIAL)
    values = {str(value) for table in report.tables for row in table.rows for value in row}

    study_ids = set(Family.objects.values_list("study_id", flat=True))
    assert not values & study_ids
    assert not any("Kari" in value or "Nordmann" in value for value in values)


def test_its_query_count_does_not_grow_with_the_families(db, django_assert_num_queries):
    oei = SiteFactory(code="OEI")
    researcher = UserFactory(username="ria", roles=[Role.RESEARCHER], sites=[oei])
    allocation_list_for(oei, by=UserFactory(username="dm", roles=[Role.DATA_MANAGER]), block_sizes=[2], length=40)
    fp = partner(oei, "fp-oei")

    def add_families(n: int) -> None:
        for _n in range(n):
            for state in ("ineligible", "declined", "eligible"):
                family_in_state(state, site=oei, by=researcher)
            family = family_in_state("consented", site=oei, by=researcher)
            record_baseline(family)
            allocation = randomisation.family_randomise(
                family=family, confirmed_site=oei, randomised_by=researcher
            ).allocation
            if allocation.arm == Arm.INTERVENTION:
                visit_services.family_assign(family=family, partner=fp, started_on=days_ago(0), assigned_by=researcher)
                log_contact(family, by=fp.user)

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        TrialSettings.current()
        with CaptureQueriesContext(connection) as captured:
            build_report(WHOLE_TRIAL)
        return len(captured.captured_queries)

    add_families(2)
    few = queries()
    add_families(4)
    many = queries()

    assert few == many


def test_it_builds_within_a_callers_transaction_and_leaves_it_writable(known_trial):
    # A download view may write before and after building the report, in one request transaction: the report must
    # not try to change that transaction's isolation (PostgreSQL refuses it after a query) nor make it read-only.
    from django.db import transaction

    from trial.events import record_event
    from trial.models import AuditEvent

    with transaction.atomic():
        record_event(kind="report_downloaded", user=None, format="pdf")
        build_report(WHOLE_TRIAL)
        record_event(kind="report_downloaded", user=None, format="xlsx")

    assert AuditEvent.objects.filter(kind="report_downloaded").count() == 2


def test_its_tables_repeat_the_numbers_the_page_draws(known_trial):
    report = build_report(WHOLE_TRIAL)
    flow = _flow_rows(report)

    assert (flow[("", "assessed")], flow[("", "excluded")], flow[("", "randomised")]) == (18, 10, 8)
    for arm in report.flow.arms:
        assert flow[(arm.arm, "allocated")] == arm.allocated.n
        assert flow[(arm.arm, "received")] == arm.received.n
        assert flow[(arm.arm, "not_received")] == arm.not_received.n
        assert [flow[(arm.arm, f"assessed_{m}")] for m in (0, 3, 6, 12, 18)] == [b.n for b in arm.follow_ups]
        assert (flow[(arm.arm, "lost")], flow[(arm.arm, "withdrawn")]) == (arm.lost.n, arm.withdrawn.n)
    checks = _rows(report, "checks")
    assert len(checks) == len(report.flow.checks) and {row["passed"] for row in checks} == {"yes"}
    months = _rows(report, "recruitment_by_month")
    assert [(r["site"], r["month"], r["randomised"]) for r in months] == [
        (m.site_code, m.month, m.randomised) for m in report.recruitment
    ]
    progression = _table(report, "progression")
    for criterion in report.progression:
        row = progression[criterion.key]
        assert (row["numerator"], row["denominator"], row["value"], row["low"], row["high"]) == (
            criterion.numerator,
            criterion.denominator,
            criterion.value,
            criterion.low,
            criterion.high,
        )
    blinding = _table(report, "blinding")
    assert [blinding[b.arm]["index"] for b in report.blinding] == [b.index for b in report.blinding]
    assert [t.key for t in report.tables] == [
        "flow",
        "checks",
        "recruitment_by_month",
        "recruitment_by_site",
        "eligibility",
        "consent",
        "retention",
        "adherence",
        "contacts_by_kind",
        "contacts_by_element",
        "caseload",
        "withdrawals",
        "blinding",
        "progression",
        "threshold_changes",
    ]
    for table in report.tables:
        assert all(len(row) == len(table.columns) for row in table.rows), table.key
