from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    """What an operator's Prometheus reads at /metrics: the web's requests and latencies (counted by every Gunicorn
    worker), the Celery queue, the outbox of messages and the allocation lists' remaining entries. It reads the apps
    below it and nothing imports it."""

    name = "monitoring"
    verbose_name = _("Monitoring")
