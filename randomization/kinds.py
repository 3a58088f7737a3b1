"""The messages this app sends the data managers: a list running low, used up, or stopped by a failed
verification, and an emergency unblinding. Each is a row of the outbox written in the transaction of the change
that causes it (notifications.services.message_queue), in the recipient's language when it is sent or read. They
carry site codes, study IDs, numbers and the staff accounts involved, never a family's name nor an arm."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.kinds import Kind, register_kind
from notifications.services import message_queue
from trial.dates import today
from trial.models import Site
from trial.roles import Role, users_with_role

LIST_LOW = "randomization.list_low"
LIST_USED_UP = "randomization.list_used_up"
LIST_STOPPED = "randomization.list_stopped"
UNBLINDING = "randomization.unblinding"


def _list_page(context: dict) -> str:
    return reverse("randomization:list", args=[context["site"]])


def _family_page(context: dict) -> str:
    return reverse("families:detail", args=[context["study_id"]])


KINDS = [
    Kind(
        code=LIST_LOW,
        label=gettext_lazy("Allocation list running low"),
        subject=lambda context: _("Allocation list of %(site)s is running low") % context,
        body=lambda context: (
            _(
                "The allocation list of %(site)s has %(remaining)s of %(length)s entries left. "
                "Extend it in the trial system before it runs out."
            )
            % context
        ),
        link=_list_page,
    ),
    Kind(
        code=LIST_USED_UP,
        label=gettext_lazy("Allocation list used up"),
        subject=lambda context: _("Allocation list of %(site)s is used up") % context,
        body=lambda context: (
            _(
                "A family at %(site)s could not be randomised: all %(length)s entries of the site's allocation "
                "list are used. Extend the list in the trial system."
            )
            % context
        ),
        link=_list_page,
    ),
    Kind(
        code=LIST_STOPPED,
        label=gettext_lazy("Allocation list stopped"),
        subject=lambda context: _("Allocation list of %(site)s stopped: it failed verification") % context,
        body=lambda context: (
            _(
                "The allocation list of %(site)s failed verification, so no family can be randomised there. "
                "A data manager and the principal investigator must record what was found, on the list's page "
                "in the trial system, before it allocates again."
            )
            % context
        ),
        link=_list_page,
    ),
    Kind(
        code=UNBLINDING,
        label=gettext_lazy("Emergency unblinding"),
        subject=lambda context: _("Emergency unblinding of %(study_id)s") % context,
        body=lambda context: (
            _("%(by)s revealed the arm of %(study_id)s to %(user)s. The reason is recorded in the trial system.")
            % context
        ),
        link=_family_page,
    ),
]


def register_kinds() -> None:
    for kind in KINDS:
        register_kind(kind)


def tell_data_managers(*, kind: str, about: str, context: dict, site: Site | None = None) -> int:
    """One message to each active data manager, written in the caller's transaction (the outbox): it is sent
    if and only if the change commits. Returns the number of data managers."""
    return message_queue(
        kind=kind,
        recipients=list(users_with_role(Role.DATA_MANAGER)),
        about=about,
        due_on=today(),
        context=context,
        site=site,
    )
