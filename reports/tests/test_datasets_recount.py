"""The recount (issue 11, §4): the CONSORT flow counted again from the exported families dataset (CSV, raw codes)
equals the report's flow (`reports.figures.build_report`)."""

import uuid
from collections import Counter

from families import services as family_services
from families.models import DeclineReason, WithdrawalReason
from followups.models import LostReason
from randomization.models import Arm
from reports.figures import build_report
from reports.tables import ReportFilters
from reports.tests import test_datasets
from reports.tests.test_datasets import download, read_csv
from trial.models import TrialSettings
from visits.tests.factories import days_ago, randomised_family

small_trial = test_datasets.small_trial  # the fixture, shared

ASSESSED = ("completed", "partly")


def recount(rows: list[dict], time_points: list[int]) -> dict:
    """The flow's numbers from the dataset's rows alone."""
    flow: dict = {"assessed": 0, "excluded": Counter(), "randomised": Counter(), "received": Counter()}
    flow["follow_ups"] = Counter()
    flow["lost"], flow["withdrawn"] = Counter(), Counter()
    for row in rows:
        arm = row["arm"]
        if row["screenings_n"] != "0":
            flow["assessed"] += 1
        if arm:
            flow["randomised"][arm] += 1
            contacted = row["contacts_n"] not in ("", "0")
            if arm == Arm.CONTROL or contacted:
                flow["received"][arm] += 1
            for months in time_points:
                if row[f"fu{months}_status"] in ASSESSED:
                    flow["follow_ups"][(arm, months)] += 1
            if row["lost_reason"]:
                flow["lost"][(arm, row["lost_reason"])] += 1
            if row["withdrawal_reason"]:
                flow["withdrawn"][(arm, row["withdrawal_reason"])] += 1
        elif row["screenings_n"] != "0":
            if row["eligible"] == "0":
                flow["excluded"]["not_eligible"] += 1
            elif row["consent_decision"] == "declined":
                flow["excluded"]["declined"] += 1
            else:
                flow["excluded"]["other"] += 1
    return flow


def test_the_flow_recounted_from_the_families_dataset_is_the_reports(client, dina, alice, oei, small_trial):
    # One more randomised family that withdrew, so that a withdrawal after randomisation is counted too.
    leaving = randomised_family(oei, researcher=alice, arm=Arm.INTERVENTION)
    family_services.family_withdraw(
        family=leaving,
        withdrawn_on=days_ago(0),
        reason=WithdrawalReason.FAMILY_REQUEST,
        data_may_be_kept=True,
        recorded_by=alice,
        token=uuid.uuid4(),
    )
    client.force_login(dina)
    rows = read_csv(download(client, dataset="families"))
    time_points = [0, *sorted(TrialSettings.current().follow_up_months)]
    counted = recount(rows, time_points)
    report = build_report(ReportFilters(site_ids=None, start=None, end=None)).flow

    assert report.assessed.n == counted["assessed"] > 0
    assert [reason.n for reason in report.excluded.reasons] == [
        counted["excluded"]["not_eligible"],
        counted["excluded"]["declined"],
        counted["excluded"]["other"],
    ]
    assert report.excluded.n == sum(counted["excluded"].values())
    assert report.randomised.n == sum(counted["randomised"].values())
    lost_labels = {str(label): code for code, label in LostReason.choices}
    withdrawal_labels = {str(label): code for code, label in WithdrawalReason.choices}
    for arm_flow in report.arms:
        arm = arm_flow.arm
        assert arm_flow.allocated.n == counted["randomised"][arm] > 0
        assert arm_flow.analysed.n == counted["randomised"][arm]
        assert arm_flow.received.n == counted["received"][arm]
        assert [box.n for box in arm_flow.follow_ups] == [counted["follow_ups"][(arm, m)] for m in time_points]
        assert {lost_labels[str(r.label)]: r.n for r in arm_flow.lost.reasons} == {
            code: n for (lost_arm, code), n in counted["lost"].items() if lost_arm == arm
        }
        assert {withdrawal_labels[str(r.label)]: r.n for r in arm_flow.withdrawn.reasons} == {
            code: n for (withdrawn_arm, code), n in counted["withdrawn"].items() if withdrawn_arm == arm
        }
    # The trial exercised every branch the recount tells apart.
    assert all(counted["excluded"][branch] for branch in ("not_eligible", "declined", "other"))
    assert counted["lost"] and counted["withdrawn"]
    assert sum(counted["follow_ups"].values()) > 0
    assert DeclineReason.PRIVACY in {row["decline_reason"] for row in rows}
