"""A Family Partner's profile (their site and capacity) is saved through one service, partner_profile_save, by the
administrator in the admin and by the demo loader: at most the trial's limit, never below the families the partner
has now (as the database counts them, under the partner's lock), and never by anyone else."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from trial.demo import Demo
from trial.models import TrialSettings
from trial.roles import Role
from trial.tests.factories import UserFactory
from visits import services
from visits.demo import load_demo_visits
from visits.models import PartnerProfile
from visits.tests.factories import assigned_family, partner


@pytest.fixture
def gunnar(oei) -> PartnerProfile:
    """A Family Partner at Øvre Eiker with two families (and a capacity of three)."""
    return partner(oei, "gunnar", capacity=3, first_name="Gunnar", last_name="Grov")


@pytest.fixture
def gunnars_families(oei, alice, gunnar) -> None:
    for _number in range(2):
        assigned_family(oei, researcher=alice, to=gunnar)


def capacity_of(profile: PartnerProfile) -> int:
    return PartnerProfile.objects.values_list("capacity", flat=True).get(pk=profile.pk)


def set_limit(limit: int) -> None:
    trial_settings = TrialSettings.current()
    trial_settings.partner_capacity = limit
    trial_settings.save()


# --- The service ----------------------------------------------------------------------------------------------


def test_it_saves_a_capacity_within_the_limit_and_records_who_changed_it(adam, gunnar):
    gunnar.capacity = 5

    services.partner_profile_save(profile=gunnar, saved_by=adam)

    assert capacity_of(gunnar) == 5
    assert PartnerProfile.history.filter(id=gunnar.pk).latest("history_date").history_user == adam


def test_it_refuses_a_capacity_above_the_trials_limit(adam, gunnar):
    set_limit(4)
    gunnar.capacity = 5

    with pytest.raises(ValidationError) as refused:
        services.partner_profile_save(profile=gunnar, saved_by=adam)

    assert refused.value.message_dict == {"capacity": ["At most 4 families per Family Partner (the trial settings)."]}
    assert capacity_of(gunnar) == 3


@pytest.mark.parametrize("capacity", [0, -1])
def test_it_refuses_a_capacity_below_one(adam, gunnar, capacity):
    gunnar.capacity = capacity

    with pytest.raises(ValidationError) as refused:
        services.partner_profile_save(profile=gunnar, saved_by=adam)

    assert "capacity" in refused.value.message_dict
    assert capacity_of(gunnar) == 3


def test_it_refuses_a_capacity_below_the_families_the_partner_has_now_even_from_a_profile_read_earlier(
    oei, alice, adam, gunnar
):
    read_earlier = PartnerProfile.objects.get(pk=gunnar.pk)  # 0 families then
    for _number in range(2):
        assigned_family(oei, researcher=alice, to=gunnar)
    read_earlier.capacity = 1

    with pytest.raises(ValidationError) as refused:
        services.partner_profile_save(profile=read_earlier, saved_by=adam)

    assert refused.value.message_dict == {"capacity": ["This Family Partner has 2 families now; reassign some first."]}
    assert capacity_of(gunnar) == 3


def test_the_database_refuses_a_capacity_below_the_families_behind_the_services_back(gunnar, gunnars_families):
    with pytest.raises(IntegrityError), transaction.atomic():
        PartnerProfile.objects.filter(pk=gunnar.pk).update(capacity=1)

    assert capacity_of(gunnar) == 3


def test_it_sets_up_a_new_partner(adam, oei):
    user = UserFactory(username="hilde", roles=[Role.FAMILY_PARTNER], sites=[oei])

    profile = services.partner_profile_save(profile=PartnerProfile(user=user, site=oei, capacity=5), saved_by=adam)

    assert PartnerProfile.objects.get(user=user).pk == profile.pk
    assert profile.active_families == 0


@pytest.mark.parametrize("who", ["alice", "dina", "paula", "frank"])
def test_only_the_administrator_saves_a_profile(request, gunnar, who):
    """Whoever the admin lets change a profile: the superuser (adam, and the administrator `createsuperuser` makes);
    not the data manager, who is staff for the trial settings only."""
    gunnar.capacity = 4

    with pytest.raises(PermissionDenied):
        services.partner_profile_save(profile=gunnar, saved_by=request.getfixturevalue(who))

    assert capacity_of(gunnar) == 3


# --- The admin --------------------------------------------------------------------------------------------------


def admin_change(client, profile: PartnerProfile, **changes):
    data = {"user": profile.user_id, "site": profile.site_id, "capacity": profile.capacity, "status": profile.status}
    return client.post(reverse("admin:visits_partnerprofile_change", args=[profile.pk]), data | changes)


@pytest.mark.parametrize(
    ("capacity", "message"),
    [
        (1, "This Family Partner has 2 families now; reassign some first."),
        (6, "At most 5 families per Family Partner (the trial settings)."),
    ],
)
def test_the_admin_shows_the_services_refusal_on_the_capacity_field(
    client, adam, gunnar, gunnars_families, capacity, message
):
    client.force_login(adam)

    response = admin_change(client, gunnar, capacity=capacity)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["capacity"] == [message]
    assert capacity_of(gunnar) == 3


def test_the_admin_saves_through_the_service(client, adam, gunnar, gunnars_families):
    client.force_login(adam)

    response = admin_change(client, gunnar, capacity=2)

    assert response.status_code == 302
    assert capacity_of(gunnar) == 2
    assert PartnerProfile.history.filter(id=gunnar.pk).latest("history_date").history_user == adam
    assert PartnerProfile.objects.get(pk=gunnar.pk).active_families == 2


# --- The demo -------------------------------------------------------------------------------------------------


def test_the_demo_sets_its_partner_up_through_the_service_within_the_trials_limit(oei, alice, adam, frank):
    set_limit(3)

    load_demo_visits(Demo(sites={"OEI": oei}, users={"partner": frank, "researcher": alice, "admin": adam}))

    profile = PartnerProfile.objects.get(user=frank)
    assert profile.capacity == 3
    assert PartnerProfile.history.get(id=profile.pk).history_user == adam


def test_the_administrator_made_by_createsuperuser_saves_a_profile(gunnar, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="x")
    gunnar.capacity = 4

    services.partner_profile_save(profile=gunnar, saved_by=superuser)

    assert capacity_of(gunnar) == 4
