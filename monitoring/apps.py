from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """What an operator's Prometheus reads at /metrics: the web's requests and latencies (counted by every Gunicorn
    worker), the Celery queue, the outbox of messages and the allocation lists' remaining entries. It reads the apps
    below it and nothing imports it. It has no models, so its name is shown nowhere (no verbose_name to translate)."""

    name = "monitoring"
