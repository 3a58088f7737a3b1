"""A former Family Partner (their assignment ended by a reassignment or the intervention's end) keeps reading,
correcting and voiding their own contacts for the correction window after it ended (the trial settings'
contact_correction_days): a mistake found a day after a handover can still be put right by the person who made it.
They see no other partner's contacts and no contact details, and log nothing new; after the window, the family is
gone from their pages (404) as before."""

import html
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from families.tests.factories import days_ago
from trial.models import TrialSettings
from visits import selectors, services
from visits.models import Contact
from visits.tests.factories import assigned_family, contact_input, days_back, log_contact

FIONAS_NOTES = "Went through the school's letter with the mother"
GUNNARS_NOTES = "First visit: met the children"


def handed_over(oei, alice, fiona, gunnar, *, days: int):
    """Fiona's family for 40 days, handed over to Gunnar `days` ago; a contact by each of them."""
    with days_back(40):
        family = assigned_family(oei, researcher=alice, to=fiona)
    fionas = log_contact(
        family, by=fiona.user, contact_date=days_ago(days + 1), duration_quarters=8, notes=FIONAS_NOTES
    )
    services.family_assign(
        family=family, partner=gunnar, started_on=days_ago(days), assigned_by=alice, reason="Fiona changes team"
    )
    gunnars = log_contact(family, by=gunnar.user, contact_date=days_ago(days), duration_quarters=4, notes=GUNNARS_NOTES)
    return family, fionas, gunnars


@pytest.fixture
def yesterday(oei, alice, fiona, gunnar):
    return handed_over(oei, alice, fiona, gunnar, days=1)


def work_url(family) -> str:
    return reverse("visits:family", args=[family.study_id])


# --- Within the window ----------------------------------------------------------------------------------------


def test_the_former_partner_sees_only_their_own_contacts_and_no_contact_details(client, yesterday, fiona):
    family, fionas, gunnars = yesterday
    client.force_login(fiona.user)

    response = client.get(work_url(family))

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert f'data-contact="{fionas.pk}"' in page and FIONAS_NOTES in page
    assert f'data-contact="{gunnars.pk}"' not in page and GUNNARS_NOTES not in page
    assert response.context["identity"] is None
    assert "Kari Nordmann" not in page  # the family's name, from its identifiers
    assert reverse("visits:contact_new", args=[family.study_id]) not in page
    assert reverse("visits:contact_edit", args=[fionas.pk]) in page
    assert reverse("visits:contact_void", args=[fionas.pk]) in page
    assert "data-former-partner" in page
    until = days_ago(1) + timedelta(days=TrialSettings.current().contact_correction_days)
    assert until.isoformat() in page


def test_the_former_partner_corrects_their_own_contact(client, yesterday, fiona):
    family, fionas, _gunnars = yesterday
    client.force_login(fiona.user)
    form = {
        "contact_date": fionas.contact_date.isoformat(),
        "duration_quarters": 6,
        "kind": "home_visit",
        "elements": ["home_visitation", "parental_guidance"],
        "notes": FIONAS_NOTES,
        "reason": "",
    }

    response = client.post(reverse("visits:contact_edit", args=[fionas.pk]), form)

    assert response.status_code == 302
    assert response.url == work_url(family)
    assert Contact.objects.get(pk=fionas.pk).duration_quarters == 6


def test_the_former_partner_voids_their_own_contact(yesterday, fiona):
    _family, fionas, _gunnars = yesterday

    services.contact_void(contact=fionas, voided_by=fiona.user, reason="Logged twice")

    assert Contact.objects.get(pk=fionas.pk).is_voided


def test_the_former_partner_logs_nothing_new(client, yesterday, fiona):
    family, _fionas, _gunnars = yesterday

    with pytest.raises(PermissionDenied):
        log_contact(family, by=fiona.user)
    client.force_login(fiona.user)
    assert client.get(reverse("visits:contact_new", args=[family.study_id])).status_code == 403

    assert Contact.objects.filter(family=family, author=fiona.user).count() == 1


def test_the_former_partner_touches_no_other_partners_contact(client, yesterday, fiona):
    _family, _fionas, gunnars = yesterday

    with pytest.raises(PermissionDenied):
        services.contact_correct(contact=gunnars, author=fiona.user, data=contact_input(duration_quarters=2))
    with pytest.raises(PermissionDenied):
        services.contact_void(contact=gunnars, voided_by=fiona.user, reason="Not mine")
    client.force_login(fiona.user)
    assert client.get(reverse("visits:contact_edit", args=[gunnars.pk])).status_code == 403
    assert client.get(reverse("visits:contact_void", args=[gunnars.pk])).status_code == 403

    stored = Contact.objects.get(pk=gunnars.pk)
    assert (stored.duration_quarters, stored.voided_at) == (4, None)


def test_the_partner_whose_intervention_ended_keeps_correcting_their_contacts(oei, alice, fiona):
    with days_back(40):
        family = assigned_family(oei, researcher=alice, to=fiona)
    contact = log_contact(family, by=fiona.user, contact_date=days_ago(2), duration_quarters=8)
    services.intervention_end(family=family, ended_on=days_ago(1), reason="moved_away", details="", ended_by=alice)

    _corrected, changed = services.contact_correct(
        contact=contact, author=fiona.user, data=contact_input(contact_date=days_ago(2), duration_quarters=4)
    )

    assert changed
    assert Contact.objects.get(pk=contact.pk).duration_quarters == 4


def test_the_partners_home_lists_the_families_they_had_until_the_window_closes(client, yesterday, fiona, gunnar):
    family, _fionas, _gunnars = yesterday
    client.force_login(fiona.user)

    page = client.get(reverse("visits:partner_home")).content.decode()

    assert f'data-former-family="{family.study_id}"' in page
    assert f'href="{work_url(family)}"' in page
    assert "data-partner-family" not in page  # it is no longer one of her families
    client.force_login(gunnar.user)
    assert f'data-former-family="{family.study_id}"' not in client.get(reverse("visits:partner_home")).content.decode()


# --- After the window -----------------------------------------------------------------------------------------


def test_after_the_window_the_family_is_gone_from_the_former_partners_pages(client, oei, alice, fiona, gunnar):
    days = TrialSettings.current().contact_correction_days
    family, fionas, _gunnars = handed_over(oei, alice, fiona, gunnar, days=days + 1)
    client.force_login(fiona.user)

    assert client.get(work_url(family)).status_code == 404
    assert client.get(reverse("visits:contact_edit", args=[fionas.pk])).status_code == 404
    assert client.get(reverse("visits:contact_void", args=[fionas.pk])).status_code == 404
    assert f'data-former-family="{family.study_id}"' not in client.get(reverse("visits:partner_home")).content.decode()
    with pytest.raises(PermissionDenied):
        services.contact_correct(contact=fionas, author=fiona.user, data=contact_input(duration_quarters=4))
    with pytest.raises(PermissionDenied):
        services.contact_void(contact=fionas, voided_by=fiona.user, reason="Too late")
    assert Contact.objects.get(pk=fionas.pk).duration_quarters == 8


def test_the_window_is_the_trial_settings_correction_days_after_the_assignment_ended(oei, alice, fiona, gunnar):
    days = TrialSettings.current().contact_correction_days
    family, _fionas, _gunnars = handed_over(oei, alice, fiona, gunnar, days=days)

    assert selectors.work_access(fiona.user, family).former_until == days_ago(0)  # its last day

    trial_settings = TrialSettings.current()
    trial_settings.contact_correction_days = days - 1
    trial_settings.save()
    assert selectors.work_access(fiona.user, family).sees is False
