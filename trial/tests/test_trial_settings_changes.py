"""Changing the trial settings: on the app's page (data managers; the PI reads) and in the admin, always with a
reason, kept in the history from the starting values on (docs/trial-rules.md: every number is a default that a
data manager changes on the trial settings page)."""

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from trial.models import TrialSettings

SETTINGS_PAGE = "/settings/"
starting_values_migration = importlib.import_module("trial.migrations.0006_trial_settings_starting_values")


def page_data(settings_row: TrialSettings, **changes) -> dict:
    """A submission of the settings page as the data manager sees it filled in, with `changes`."""
    from trial.forms import TrialSettingsForm

    form = TrialSettingsForm(instance=settings_row)
    data = {name: form[name].field.prepare_value(form[name].value()) for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    return data | changes


def admin_data(client, settings_row: TrialSettings, **changes) -> dict:
    url = reverse("admin:trial_trialsettings_change", args=[settings_row.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].field.prepare_value(form[name].value()) for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    return data | changes


# --- The starting values ----------------------------------------------------------------------------------


def test_the_seeded_settings_start_their_history_with_the_starting_values(db):
    first = TrialSettings.history.earliest("history_date")

    assert first.history_change_reason == "Starting values"
    assert first.partner_capacity == 5
    assert first.follow_up_months == [3, 6, 12, 18]


def test_the_migration_records_the_starting_values_once_when_no_history_exists(trial_settings):
    TrialSettings.history.all().delete()

    starting_values_migration.record_starting_values(django_apps, None)
    starting_values_migration.record_starting_values(django_apps, None)

    rows = list(TrialSettings.history.all())
    assert [(row.history_change_reason, row.history_type) for row in rows] == [("Starting values", "+")]
    assert rows[0].min_parent_age == trial_settings.min_parent_age
    assert rows[0].allocation_block_sizes == trial_settings.allocation_block_sizes


def test_the_first_change_keeps_the_old_value(client, dina, trial_settings):
    client.force_login(dina)

    client.post(SETTINGS_PAGE, page_data(trial_settings, partner_capacity=4, reason="Fewer partner hours"))

    changes = client.get(SETTINGS_PAGE).context["changes"]
    assert [(c.label, c.old, c.new) for c in changes[0].fields] == [("families per Family Partner at a time", "5", "4")]


# --- The page: data managers change, the PI reads, nobody else ---------------------------------------------


def test_a_data_manager_changes_a_setting_with_a_reason_and_sees_it_in_the_history(client, dina, trial_settings):
    client.force_login(dina)

    response = client.post(
        SETTINGS_PAGE,
        page_data(trial_settings, follow_up_months="3, 6, 12", reason="Protocol amendment 2: no 18-month visit"),
    )

    assert response.status_code == 302 and response.url == SETTINGS_PAGE
    assert TrialSettings.current().follow_up_months == [3, 6, 12]
    latest = TrialSettings.history.latest("history_date")
    assert (latest.history_user, latest.history_change_reason) == (dina, "Protocol amendment 2: no 18-month visit")
    page = client.get(SETTINGS_PAGE)
    change = page.context["changes"][0]
    assert (change.who, change.reason) == (dina.get_full_name(), "Protocol amendment 2: no 18-month visit")
    assert [(f.old, f.new) for f in change.fields] == [("3, 6, 12, 18", "3, 6, 12")]
    assert "Protocol amendment 2: no 18-month visit" in page.content.decode()


def test_it_asks_for_a_reason_and_saves_nothing_without_one(client, dina, trial_settings):
    client.force_login(dina)
    history = TrialSettings.history.count()

    response = client.post(SETTINGS_PAGE, page_data(trial_settings, partner_capacity=4, reason="  "))

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert TrialSettings.current().partner_capacity == 5
    assert TrialSettings.history.count() == history


def test_it_saves_nothing_when_nothing_changed(client, dina, trial_settings):
    client.force_login(dina)
    history = TrialSettings.history.count()

    response = client.post(SETTINGS_PAGE, page_data(trial_settings, reason="Just looking"))

    assert response.status_code == 302
    assert TrialSettings.history.count() == history


def test_the_settings_own_rules_apply_on_the_page(client, dina, trial_settings):
    client.force_login(dina)

    response = client.post(
        SETTINGS_PAGE,
        page_data(trial_settings, progression_retention_amber=90, allocation_block_sizes="3, 5", reason="Try"),
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["progression_retention_amber"] == ["Amber must not be above green."]
    assert "allocation_block_sizes" in errors
    assert TrialSettings.current().progression_retention_amber == 60


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("follow_up_months", "[" * 5000 + "]" * 5000),
        ("follow_up_months", json.dumps(list(range(1, 100_000)))),
        ("follow_up_months", "3, 6, ², 12"),
        ("follow_up_months", "9" * 5000),
        ("allocation_block_sizes", "[[[[[[2]]]]]]"),
        ("allocation_block_sizes", "2, 4, \x00"),
        ("allocation_block_sizes", "٢, ٤"),
        ("min_parent_age", "9" * 5000),
        ("weekly_hours_target", "9" * 5000),
    ],
)
def test_it_answers_hostile_values_with_a_form_error(client, dina, trial_settings, field, value):
    client.force_login(dina)

    response = client.post(SETTINGS_PAGE, page_data(trial_settings, reason="Fuzz", **{field: value}))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert TrialSettings.history.count() == 1


def test_the_pi_reads_the_settings_and_their_history_but_cannot_change_them(client, dina, paula, trial_settings):
    client.force_login(dina)
    client.post(SETTINGS_PAGE, page_data(trial_settings, target_sample_size=48, reason="Funder agreed to 48"))
    client.force_login(paula)

    page = client.get(SETTINGS_PAGE)

    assert page.status_code == 200
    assert page.context["form"] is None
    content = page.content.decode()
    assert '<form method="post"' not in content.split("<main")[1]
    assert "Funder agreed to 48" in content and "48" in content
    assert client.post(SETTINGS_PAGE, page_data(trial_settings, target_sample_size=50, reason="x")).status_code == 403
    assert TrialSettings.current().target_sample_size == 48


@pytest.mark.parametrize("user", ["alice", "carol", "frank", "adam"])
def test_nobody_else_opens_the_settings_page(client, request, trial_settings, user):
    client.force_login(request.getfixturevalue(user))

    assert client.get(SETTINGS_PAGE).status_code == 403
    assert client.post(SETTINGS_PAGE, page_data(trial_settings, reason="x")).status_code == 403


def test_the_menu_offers_the_settings_to_data_managers_and_the_pi_only(client, dina, paula, alice):
    for user, offered in ((dina, True), (paula, True), (alice, False)):
        client.force_login(user)
        page = client.get(reverse("password_change")).content.decode()
        assert (f'href="{SETTINGS_PAGE}"' in page) is offered, user.username


# --- The admin asks a reason too, and takes the lists as typed numbers --------------------------------------


def test_the_admin_asks_for_a_reason_and_records_it(client, dina, trial_settings):
    client.force_login(dina)
    url = reverse("admin:trial_trialsettings_change", args=[trial_settings.pk])

    without = client.post(url, admin_data(client, trial_settings, partner_capacity=4, reason=""))
    assert without.status_code == 200
    assert "reason" in without.context["adminform"].form.errors
    assert TrialSettings.current().partner_capacity == 5

    with_reason = client.post(url, admin_data(client, trial_settings, partner_capacity=4, reason="Partner hours cut"))
    assert with_reason.status_code == 302
    latest = TrialSettings.history.latest("history_date")
    assert (latest.partner_capacity, latest.history_user, latest.history_change_reason) == (
        4,
        dina,
        "Partner hours cut",
    )


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, json.dumps(list(range(100_000))), "{}", '"3"'])
def test_the_admin_answers_hostile_json_with_a_form_error(client, dina, trial_settings, value):
    client.force_login(dina)
    url = reverse("admin:trial_trialsettings_change", args=[trial_settings.pk])

    response = client.post(url, admin_data(client, trial_settings, follow_up_months=value, reason="Fuzz"))

    assert response.status_code == 200
    assert "follow_up_months" in response.context["adminform"].form.errors
    assert TrialSettings.history.count() == 1


def test_the_admin_takes_the_lists_as_typed_numbers(client, dina, trial_settings):
    client.force_login(dina)
    url = reverse("admin:trial_trialsettings_change", args=[trial_settings.pk])

    response = client.post(
        url, admin_data(client, trial_settings, allocation_block_sizes="4; 6", reason="Fewer guessable blocks")
    )

    assert response.status_code == 302
    assert TrialSettings.current().allocation_block_sizes == [4, 6]
