"""The words of every reminder (notifications.kinds): a subject and a body from the message's context, in the
active language (the recipient's, when sent or read), the page it is about, and the check made again when sent.

Texts carry study IDs, site codes, dates and numbers, never names. A subject never carries an arm, nor anything
that reveals one: the subjects of reminders about a Family Partner's work name no family (the body does, for
recipients who are not blinded).
"""

from datetime import date

from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications.kinds import Kind
from randomization.models import Arm
from reminders import services
from visits import weeks


def _date(iso: str | None) -> str:
    """A date of the context as the active language writes it (dd.mm.yyyy in Norwegian)."""
    return formats.date_format(date.fromisoformat(iso), "SHORT_DATE_FORMAT") if iso else ""


def _time_point(context: dict) -> str:
    months = context.get("months", 0)
    if not months:
        return _("baseline assessment")
    return _("%(months)s-month assessment") % {"months": months}


def _family_page(context: dict) -> str:
    return reverse("families:detail", args=[context["study_id"]])


def _words(context: dict) -> dict:
    return {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "time_point": _time_point(context),
        "opens_on": _date(context.get("opens_on")),
        "closes_on": _date(context.get("closes_on")),
        "target_on": _date(context.get("target_on")),
    }


# --- Assessments ------------------------------------------------------------------------------------------


def _opens_soon_subject(context: dict) -> str:
    return _("%(study_id)s: the window of the %(time_point)s opens on %(opens_on)s") % _words(context)


def _opens_soon_body(context: dict) -> str:
    words = _words(context)
    if not context.get("closes_on"):
        return _("The %(time_point)s of %(study_id)s (%(site)s) is due from %(opens_on)s.") % words
    return (
        _(
            "The window of the %(time_point)s of %(study_id)s (%(site)s) opens on %(opens_on)s and closes on "
            "%(closes_on)s; the target date is %(target_on)s. Book the assessment with the family."
        )
        % words
    )


def _open_subject(context: dict) -> str:
    return _("%(study_id)s: the window of the %(time_point)s is open") % _words(context)


def _open_body(context: dict) -> str:
    words = _words(context)
    if not context.get("closes_on"):
        return (
            _(
                "The %(time_point)s of %(study_id)s (%(site)s) is due from %(opens_on)s. The family is randomised only "
                "after it is recorded."
            )
            % words
        )
    return (
        _(
            "The window of the %(time_point)s of %(study_id)s (%(site)s) is open from %(opens_on)s to %(closes_on)s; "
            "the target date is %(target_on)s."
        )
        % words
    )


def _closing_subject(context: dict) -> str:
    return _("%(study_id)s: the window of the %(time_point)s closes on %(closes_on)s") % _words(context)


def _closing_body(context: dict) -> str:
    return _(
        "The window of the %(time_point)s of %(study_id)s (%(site)s) closes on %(closes_on)s. Record the "
        "assessment, or that it was missed or refused."
    ) % _words(context)


def _missed_subject(context: dict) -> str:
    return _("%(study_id)s: the window of the %(time_point)s has closed") % _words(context)


def _missed_body(context: dict) -> str:
    return _(
        "The window of the %(time_point)s of %(study_id)s (%(site)s) closed on %(closes_on)s with nothing "
        "recorded. Record whether it was done, missed or refused."
    ) % _words(context)


# --- Researchers --------------------------------------------------------------------------------------------


def _consent_subject(context: dict) -> str:
    return _("%(study_id)s: consent pending") % {"study_id": context.get("study_id", "")}


def _consent_body(context: dict) -> str:
    return ngettext(
        "%(study_id)s (%(site)s) was screened eligible on %(screened_on)s, %(days)s day ago, and has no consent "
        "decision yet.",
        "%(study_id)s (%(site)s) was screened eligible on %(screened_on)s, %(days)s days ago, and has no consent "
        "decision yet.",
        context.get("days", 0),
    ) % {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "screened_on": _date(context.get("screened_on")),
        "days": context.get("days", 0),
    }


def _waiting_subject(context: dict) -> str:
    return _("A family is waiting for a Family Partner (%(site)s)") % {"site": context.get("site", "")}


def _waiting_body(context: dict) -> str:
    return ngettext(
        "%(study_id)s (%(site)s) was randomised on %(randomised_on)s and has waited more than %(days)s day for a "
        "Family Partner.",
        "%(study_id)s (%(site)s) was randomised on %(randomised_on)s and has waited more than %(days)s days for a "
        "Family Partner.",
        context.get("days", 0),
    ) % {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "randomised_on": _date(context.get("randomised_on")),
        "days": context.get("days", 0),
    }


def _milestone_subject(context: dict) -> str:
    return _("An intervention reaches %(months)s months (%(site)s)") % {
        "months": context.get("months", 0),
        "site": context.get("site", ""),
    }


def _milestone_body(context: dict) -> str:
    return _(
        "The intervention of %(study_id)s (%(site)s), started on %(started_on)s, reaches %(months)s months today."
    ) % {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "started_on": _date(context.get("started_on")),
        "months": context.get("months", 0),
    }


def _milestone_link(context: dict) -> str:
    if context.get("page") == "partner":
        return reverse("visits:family", args=[context["study_id"]])
    return _family_page(context)


# --- Family Partners ----------------------------------------------------------------------------------------


def _week_subject(context: dict) -> str:
    return _("Your families last week (%(week)s)") % {"week": context.get("week", "")}


def _week_body(context: dict) -> str:
    lines = [_("Families with no contact or under the target in week %(week)s:") % {"week": context.get("week", "")}]
    for row in context.get("families", []):
        if not row["quarters"]:
            lines.append(_("%(study_id)s: no contact") % {"study_id": row["study_id"]})
        else:
            lines.append(
                _("%(study_id)s: %(hours)s of %(target)s hours")
                % {
                    "study_id": row["study_id"],
                    "hours": weeks.format_hours(row["quarters"]),
                    "target": weeks.format_hours(row["expected"]),
                }
            )
    return "\n".join(lines)


def _new_family_subject(context: dict) -> str:
    return _("A new family for you")


def _new_family_body(context: dict) -> str:
    return _("%(study_id)s (%(site)s) is assigned to you from %(started_on)s.") % {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "started_on": _date(context.get("started_on")),
    }


# --- Randomisation receipt ----------------------------------------------------------------------------------


def _receipt_subject(context: dict) -> str:
    return _("Randomisation receipt: %(study_id)s") % {"study_id": context.get("study_id", "")}


def _receipt_body(context: dict) -> str:
    text = _("%(study_id)s (%(site)s) was randomised on %(randomised_on)s.") % {
        "study_id": context.get("study_id", ""),
        "site": context.get("site", ""),
        "randomised_on": _date(context.get("randomised_on")),
    }
    if "arm" in context and context["arm"] in Arm.values:
        text += "\n" + _("Randomisation ID: %(randomisation_id)s. Arm: %(arm)s.") % {
            "randomisation_id": context.get("randomisation_id", ""),
            "arm": Arm(context["arm"]).label,
        }
    return text


def _receipt_link(context: dict) -> str:
    if "arm" in context:
        return reverse("randomization:receipt", args=[context["study_id"]])
    return _family_page(context)


KINDS = [
    Kind(
        services.OPENS_SOON,
        gettext_lazy("An assessment window opens soon"),
        _opens_soon_subject,
        _opens_soon_body,
        services.assessment_still_due,
        _family_page,
    ),
    Kind(
        services.OPEN,
        gettext_lazy("An assessment window is open"),
        _open_subject,
        _open_body,
        services.assessment_still_due,
        _family_page,
    ),
    Kind(
        services.CLOSING,
        gettext_lazy("An assessment window closes soon"),
        _closing_subject,
        _closing_body,
        services.assessment_still_due,
        _family_page,
    ),
    Kind(
        services.MISSED,
        gettext_lazy("An assessment window closed with nothing recorded"),
        _missed_subject,
        _missed_body,
        services.assessment_still_due,
        _family_page,
    ),
    Kind(
        services.CONSENT_PENDING,
        gettext_lazy("Consent pending"),
        _consent_subject,
        _consent_body,
        services.consent_still_due,
        _family_page,
    ),
    Kind(
        services.WAITING_FOR_PARTNER,
        gettext_lazy("Waiting for a Family Partner"),
        _waiting_subject,
        _waiting_body,
        services.waiting_still_due,
        _family_page,
    ),
    Kind(
        services.INTERVENTION_MILESTONE,
        gettext_lazy("Intervention length reached"),
        _milestone_subject,
        _milestone_body,
        services.milestone_still_due,
        _milestone_link,
    ),
    Kind(
        services.PARTNER_WEEK,
        gettext_lazy("Families with no contact or under target last week"),
        _week_subject,
        _week_body,
        services.partner_week_still_due,
        lambda context: reverse("visits:partner_home"),
    ),
    Kind(
        services.NEW_FAMILY,
        gettext_lazy("A new family for a Family Partner"),
        _new_family_subject,
        _new_family_body,
        services.new_family_still_due,
        lambda context: reverse("visits:family", args=[context["study_id"]]),
    ),
    Kind(
        services.RANDOMISATION_RECEIPT,
        gettext_lazy("Randomisation receipt"),
        _receipt_subject,
        _receipt_body,
        services.receipt_still_due,
        _receipt_link,
    ),
]
