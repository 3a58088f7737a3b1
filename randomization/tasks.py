"""The daily verification of the allocation lists. The data managers' alerts (a list low, used up or stopped, an
emergency unblinding) are messages of the outbox (randomization/kinds.py), delivered by notifications.tasks."""

from celery import shared_task


@shared_task
def verify_allocation_lists() -> int:
    """Every list, verified daily (CELERY_BEAT_SCHEDULE): a list that fails is stopped at once. Returns the
    number of lists that failed."""
    from randomization.lists import allocation_lists_verify_all

    return sum(not verification.passed for verification in allocation_lists_verify_all())
