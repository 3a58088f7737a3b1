"""Messages to the data managers about allocation lists and code-breaks. They carry study IDs and site
codes, never a family's name nor an arm, and are written in Norwegian and English."""

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _

from trial.roles import Role, users_with_role

RETRY = {"autoretry_for": (SMTPException, OSError), "retry_backoff": 60, "max_retries": 8}


def _data_manager_addresses() -> list[str]:
    return list(users_with_role(Role.DATA_MANAGER).exclude(email="").values_list("email", flat=True))


def _in_both_languages(write) -> tuple[str, str]:
    """(subject, body): the Norwegian text first, then the English."""
    parts = []
    for language in ("nb", "en"):
        with translation.override(language):
            parts.append(write())
    subject = f"{parts[0][0]} / {parts[1][0]}"
    body = f"{parts[0][1]}\n\n---\n\n{parts[1][1]}\n"
    return subject, body


def _send(subject: str, body: str) -> int:
    recipients = _data_manager_addresses()
    if not recipients:
        return 0
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)


@shared_task(**RETRY)
def send_list_alert(list_id: int, kind: str) -> int:
    from randomization.models import AllocationList

    allocation_list = AllocationList.objects.select_related("site").get(pk=list_id)

    def write() -> tuple[str, str]:
        values = {
            "site": allocation_list.site.code,
            "remaining": allocation_list.remaining,
            "length": allocation_list.length,
        }
        if kind == "suspended":
            return (
                _("Allocation list of %(site)s stopped: it failed verification") % values,
                _(
                    "The allocation list of %(site)s failed verification, so no family can be randomised there. "
                    "A data manager and the principal investigator must record what was found, on the list's page "
                    "in the trial system, before it allocates again."
                )
                % values,
            )
        if kind == "exhausted":
            return (
                _("Allocation list of %(site)s is used up") % values,
                _(
                    "A family at %(site)s could not be randomised: all %(length)s entries of the site's allocation "
                    "list are used. Extend the list in the trial system."
                )
                % values,
            )
        return (
            _("Allocation list of %(site)s is running low") % values,
            _(
                "The allocation list of %(site)s has %(remaining)s of %(length)s entries left. "
                "Extend it in the trial system before it runs out."
            )
            % values,
        )

    return _send(*_in_both_languages(write))


@shared_task
def verify_allocation_lists() -> int:
    """Every list, verified daily (CELERY_BEAT_SCHEDULE): a list that fails is stopped at once. Returns the
    number of lists that failed."""
    from randomization.lists import allocation_lists_verify_all

    return sum(not verification.passed for verification in allocation_lists_verify_all())


@shared_task(**RETRY)
def send_unblinding_notice(unblinding_id: int) -> int:
    from randomization.models import Unblinding

    unblinding = Unblinding.objects.select_related("family", "user", "unblinded_by").get(pk=unblinding_id)

    def write() -> tuple[str, str]:
        values = {
            "study_id": unblinding.family.study_id,
            "user": unblinding.user.get_username(),
            "by": unblinding.unblinded_by.get_username(),
        }
        return (
            _("Emergency unblinding of %(study_id)s") % values,
            _("%(by)s revealed the arm of %(study_id)s to %(user)s. The reason is recorded in the trial system.")
            % values,
        )

    return _send(*_in_both_languages(write))
