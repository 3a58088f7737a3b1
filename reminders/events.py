"""Messages on events, written in the event's own transaction (the outbox): a Family Partner is told of a new
family, and the researcher who randomised and the principal investigators get a randomisation receipt."""

from notifications.models import Message
from notifications.services import message_queue, messages_queue_many
from randomization.models import Allocation
from reminders.services import NEW_FAMILY, RANDOMISATION_RECEIPT, receipt_recipients
from trial.dates import today
from trial.roles import is_blinded
from visits.models import Assignment


def partner_told_of_new_family(sender, instance: Assignment, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of an Assignment: the new one's partner (also after a reassignment) gets a message. The
    assignment is saved inside visits.services.family_assign's transaction, so the message is kept with it or
    not at all."""
    if not created or raw:
        return
    user = instance.partner.user
    if is_blinded(user) or not user.is_active:
        return
    family = instance.family
    message_queue(
        kind=NEW_FAMILY,
        recipients=[user],
        about=f"assignment:{instance.pk}",
        due_on=today(),
        context={"study_id": family.study_id, "site": family.site.code, "started_on": instance.started_on.isoformat()},
        site=family.site,
    )


def randomisation_receipt(sender, family, allocation: Allocation, randomised_by, **kwargs) -> None:
    """family_randomised (inside the randomisation's transaction): a receipt to the researcher who randomised and
    to each principal investigator. The arm and the randomisation ID (its list position) are written into the
    message only for recipients who are not blinded; the subject never carries them."""
    randomised_on = today(allocation.randomised_at)
    base = {"study_id": family.study_id, "site": family.site.code, "randomised_on": randomised_on.isoformat()}
    rows = []
    for recipient in receipt_recipients(allocation, randomised_by):
        context = dict(base)
        if not is_blinded(recipient):
            context.update(arm=allocation.arm, randomisation_id=allocation.randomisation_id)
        rows.append(
            Message(
                kind=RANDOMISATION_RECEIPT,
                about=f"allocation:{allocation.pk}",
                recipient=recipient,
                due_on=randomised_on,
                site=family.site,
                context=context,
            )
        )
    messages_queue_many(rows)
