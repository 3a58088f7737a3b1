"""The trial's roles (docs/trial-rules.md, "Who sees what") and the sites a user may act at.

A role is a Django group. Site-bound roles (researcher, Family Partner, outcome assessor) apply at
the sites the user is a member of; trial-wide roles (principal investigator, data manager) see every
site. A user may hold several roles. Everything here is computed once per request and cached on the
user object, so scoping a page costs at most two queries.
"""

from django.contrib.auth import models as auth_models
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from trial.models import Site


class Role(models.TextChoices):
    RESEARCHER = "researcher", _("Researcher")
    FAMILY_PARTNER = "family_partner", _("Family Partner")
    OUTCOME_ASSESSOR = "outcome_assessor", _("Outcome assessor")
    PRINCIPAL_INVESTIGATOR = "principal_investigator", _("Principal investigator")
    DATA_MANAGER = "data_manager", _("Data manager")
    ADMINISTRATOR = "administrator", _("Administrator")


TRIAL_WIDE_ROLES = frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.DATA_MANAGER})

# The project keeps Django's own user model (AUTH_USER_MODEL is not set): a signed-in account or the
# anonymous visitor.
User = auth_models.User | auth_models.AnonymousUser


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind @login_required: its user is signed in, never anonymous."""

    user: auth_models.User


def roles_of(user: User) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_trial_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._trial_roles = cached  # type: ignore[attr-defined]  # a per-request cache on the user, not a field
    return cached


def has_role(user: User, *roles: str) -> bool:
    return not roles_of(user).isdisjoint(roles)


def is_blinded(user: User) -> bool:
    """An outcome assessor is blinded everywhere, whatever other roles the account also holds
    (docs/trial-rules.md, "Who sees what"): no arm, nor anything that reveals it."""
    return has_role(user, Role.OUTCOME_ASSESSOR)


def member_site_ids(user: User) -> frozenset[int]:
    """Sites the user belongs to (whatever their roles)."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_trial_site_ids", None)
    if cached is None:
        cached = frozenset(user.trial_sites.values_list("pk", flat=True))
        user._trial_site_ids = cached  # type: ignore[attr-defined]  # a per-request cache on the user, not a field
    return cached


def site_ids_for(user: User, *roles: str) -> frozenset[int] | None:
    """Sites where the user holds one of `roles`; None means every site (a trial-wide role)."""
    held = roles_of(user).intersection(roles)
    if not held:
        return frozenset()
    if held & TRIAL_WIDE_ROLES:
        return None
    return member_site_ids(user)


def sites_for(user: User, *roles: str) -> models.QuerySet[Site]:
    site_ids = site_ids_for(user, *roles)
    if site_ids is None:
        return Site.objects.all()
    return Site.objects.filter(pk__in=site_ids)


def can_at_site(user: User, site_id: int, *roles: str) -> bool:
    site_ids = site_ids_for(user, *roles)
    return site_ids is None or site_id in site_ids


def require_role(request: HttpRequest, *roles: str) -> None:
    """For a view: 403 unless the user holds one of `roles` (somewhere)."""
    if not has_role(request.user, *roles):
        raise PermissionDenied


def users_with_role(role: str, *, site: Site | None = None) -> models.QuerySet[auth_models.User]:
    """Active accounts holding `role` (members of `site`, when given), by name: for choosing a person."""
    users = auth_models.User.objects.filter(is_active=True, groups__name=role)
    if site is not None:
        users = users.filter(trial_sites=site)
    return users.order_by("first_name", "last_name", "username").distinct()


def display_name(user: auth_models.AbstractUser) -> str:
    """How the trial's pages name a person: the full name, or the username when there is none."""
    return user.get_full_name() or user.get_username()
