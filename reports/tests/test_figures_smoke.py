from reports.figures import build_report
from reports.tables import ReportFilters
from visits.tests.factories import assigned_family, log_contact, partner, randomised_family


def test_it_builds_a_report_of_a_small_trial(oei, alice, paula):
    partner_profile = partner(oei, "fp1")
    family = assigned_family(oei, researcher=alice, to=partner_profile)
    log_contact(family, by=partner_profile.user)
    randomised_family(oei, researcher=alice, arm="control")
    report = build_report(ReportFilters(site_ids=None, start=None, end=None))
    assert report.flow.randomised.n >= 2
    assert all(check.passed for check in report.flow.checks), report.flow.checks
    assert {t.key for t in report.tables} >= {"flow", "progression", "blinding"}
