"""The weekly hours page's week range: from the first intervention's week to this week, whatever is asked."""

import pytest
from django.urls import reverse

from visits import weeks
from visits.tests.factories import assigned_family, partner


@pytest.mark.parametrize("until", ["0001-W05", "1999-W01", "9999-W52", "junk", ""])
def test_the_weekly_hours_stay_between_the_first_intervention_and_this_week(client, oei, alice, until):
    family = assigned_family(oei, researcher=alice, to=partner(oei, "fiona"))
    client.force_login(alice)

    response = client.get(reverse("visits:dose"), {"until": until})

    assert response.status_code == 200
    shown = response.context["weeks"]
    this_week = weeks.week_of(weeks.today())
    assert shown[-1] == this_week  # the family started this week: nothing earlier or later to show
    assert response.context["earlier"] == "" and response.context["later"] == ""
    assert family.study_id in response.content.decode()


def test_the_assign_form_of_a_stale_page_shows_that_a_colleague_was_quicker(client, oei, alice):
    from families.tests.factories import days_ago
    from visits import services
    from visits.models import Assignment
    from visits.tests.factories import randomised_family

    fiona, gunnar = partner(oei, "fiona"), partner(oei, "gunnar")
    family = randomised_family(oei, researcher=alice)
    client.force_login(alice)
    url = reverse("visits:assign", args=[family.study_id])
    shown = client.get(url).context["form"]["shown"].value()
    services.family_assign(family=family, partner=fiona, started_on=days_ago(0), assigned_by=alice)

    response = client.post(url, {"partner": gunnar.pk, "started_on": days_ago(0).isoformat(), "shown": shown})

    assert response.status_code == 200
    assert "changed while you were choosing" in str(response.context["form"].non_field_errors())
    assert Assignment.objects.get(family=family).partner == fiona


def test_the_work_page_tells_how_often_each_contact_was_corrected(client, oei, alice):
    from visits import services
    from visits.tests.factories import contact_input, log_contact

    fiona = partner(oei, "fiona")
    family = assigned_family(oei, researcher=alice, to=fiona)
    corrected = log_contact(family, by=fiona.user, duration_quarters=4)
    untouched = log_contact(family, by=fiona.user, duration_quarters=2)
    for quarters in (5, 6):
        services.contact_correct(contact=corrected, author=fiona.user, data=contact_input(duration_quarters=quarters))
    client.force_login(alice)

    response = client.get(reverse("visits:family", args=[family.study_id]))

    counts = {row[0].pk: row[0].corrections for row in response.context["contacts"]}
    assert counts == {corrected.pk: 2, untouched.pk: 0}
    assert response.content.decode().count("data-corrections") == 1


def test_the_caseload_links_each_family_to_its_page(client, oei, alice):
    family = assigned_family(oei, researcher=alice, to=partner(oei, "fiona"))
    client.force_login(alice)

    response = client.get(reverse("visits:caseload"))

    assert f'href="{reverse("families:detail", args=[family.study_id])}"' in response.content.decode()
