import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from trial.models import Site

PASSWORD = "correct-horse-battery"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("code",)

    code = "OEI"
    name = factory.LazyAttribute(
        lambda site: {"OEI": "Øvre Eiker", "LAR": "Larvik", "LIL": "Lillehammer"}.get(site.code, site.code)
    )


class UserFactory(factory.django.DjangoModelFactory):
    """A user with trial roles at sites: UserFactory(roles=["researcher"], sites=[oei])."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name", locale="no_NO")
    last_name = factory.Faker("last_name", locale="no_NO")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set([Group.objects.get_or_create(name=role)[0] for role in extracted])

    @factory.post_generation
    def sites(self, create, extracted, **kwargs):
        if create and extracted:
            self.trial_sites.set(extracted)
