from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task
def clear_expired_sessions() -> int:
    """Expired sessions still hold who was logged in; remove them hourly rather than never."""
    deleted, _details = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
