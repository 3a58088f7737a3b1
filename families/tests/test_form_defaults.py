"""The forms start from what is usually true: screening and consent happen today, and whoever records the
consent obtained it; the screening form says how many problem areas make a family eligible."""

import re

from django.urls import reverse
from django.utils import timezone

from families.tests.factories import family_in_state
from trial.models import TrialSettings


def input_value(page: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
    match = re.search(r'value="([^"]*)"', tag)
    return match.group(1) if match else ""


def test_it_dates_a_screening_today_unless_told_otherwise(client, alice, oei):
    family = family_in_state("referred", site=oei, by=alice)
    client.force_login(alice)

    english = client.get(reverse("families:screen", args=[family.study_id])).content.decode()
    norwegian = client.get(
        reverse("families:screen", args=[family.study_id]), HTTP_ACCEPT_LANGUAGE="nb"
    ).content.decode()

    today = timezone.localdate()
    assert input_value(english, "screened_on") == today.isoformat()
    assert input_value(norwegian, "screened_on") == today.strftime("%d.%m.%Y")


def test_it_dates_a_consent_today_and_names_the_researcher_recording_it_as_who_obtained_it(client, alice, oei):
    family = family_in_state("eligible", site=oei, by=alice)
    client.force_login(alice)

    page = client.get(reverse("families:consent", args=[family.study_id])).content.decode()

    assert input_value(page, "decided_on") == timezone.localdate().isoformat()
    select = re.search(r'<select[^>]*name="obtained_by".*?</select>', page, re.DOTALL).group(0)
    selected = re.findall(r'<option value="(\d+)"[^>]*selected', select)
    assert selected == [str(alice.pk)]


def test_it_tells_the_screener_how_many_problem_areas_are_needed(client, alice, oei, trial_settings):
    family = family_in_state("referred", site=oei, by=alice)
    client.force_login(alice)
    url = reverse("families:screen", args=[family.study_id])

    assert "at least 2 areas" in client.get(url).content.decode()

    trial_settings.min_struggle_areas = 3
    trial_settings.save()
    assert TrialSettings.current().min_struggle_areas == 3
    assert "at least 3 areas" in client.get(url).content.decode()
