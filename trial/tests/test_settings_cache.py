"""TrialSettings.current() reads the row once per request, and on every call outside a request."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from trial.models import TrialSettings, begin_request_cache, end_request_cache
from visits.tests.factories import assigned_family, partner


def settings_queries(action) -> int:
    with CaptureQueriesContext(connection) as queries:
        action()
    return sum('"trial_trialsettings"' in query["sql"] for query in queries.captured_queries)


def three_reads() -> None:
    for _call in range(3):
        TrialSettings.current()


def test_it_reads_the_settings_once_in_a_request_and_again_in_the_next(trial_settings):
    for _request in range(2):
        begin_request_cache()
        try:
            assert settings_queries(three_reads) == 1
        finally:
            end_request_cache()


def test_it_reads_the_settings_on_every_call_outside_a_request(trial_settings):
    assert settings_queries(three_reads) == 3
    TrialSettings.objects.update(partner_capacity=4)
    assert TrialSettings.current().partner_capacity == 4


def test_a_saved_row_is_read_again_within_the_request(trial_settings):
    begin_request_cache()
    try:
        TrialSettings.current()
        changed = TrialSettings.objects.get()
        changed.partner_capacity = 3
        changed.save()
        assert TrialSettings.current().partner_capacity == 3
    finally:
        end_request_cache()


def test_a_page_that_asks_for_the_settings_several_times_reads_them_once(client, oei, alice):
    # The weekly hours page asks in the view, for the rows and for the totals.
    assigned_family(oei, researcher=alice, to=partner(oei, "fiona"))
    client.force_login(alice)

    assert settings_queries(lambda: client.get(reverse("visits:dose"))) == 1
    TrialSettings.objects.update(weekly_hours_target=5)
    assert client.get(reverse("visits:dose")).context["target_hours"] == 5
