"""Delivery of the outbox. Tasks are thin: they take ids and call a service.

Neither keeps a result: a user's request that queues the sweep after its commit then touches only the broker
(with short timeouts and no retries), never the result backend.
"""

from celery import shared_task

from notifications.services import message_deliver, messages_due_ids


@shared_task(ignore_result=True)
def deliver_message(message_id: int) -> str:
    return message_deliver(message_id)


@shared_task(ignore_result=True)
def deliver_due() -> int:
    """The sweep: deliver every message that is due (also those never queued, because the broker was down, and
    those a dead worker left claimed). Run by the beat every minute and after each commit that writes messages.
    Two sweeps at once (two beats, a kick and the beat) are safe: each message is claimed by one of them only.
    Returns the number of messages it tried (some may have been taken by another sweep meanwhile)."""
    tried = 0
    after = 0
    # In pages, forward only: a message that fails again at once waits for the next sweep.
    while ids := messages_due_ids(after=after):
        for message_id in ids:
            message_deliver(message_id)
        tried += len(ids)
        after = ids[-1]
    return tried
