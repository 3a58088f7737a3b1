import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")

app = Celery("trial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _structured_logs(logger, **kwargs) -> None:
    """Celery sets up its own handlers: in JSON mode they write JSON lines, with the task's id (trial/logs.py)."""
    from django.conf import settings

    from trial.logs import RequestIdFilter, json_formatter

    for handler in logger.handlers:
        handler.addFilter(RequestIdFilter())
        if settings.LOG_FORMAT == "json":
            handler.setFormatter(json_formatter())


@signals.task_prerun.connect
def _task_started(task_id: str, **kwargs) -> None:
    from trial.logs import task_id as current_task_id

    current_task_id.set(task_id)


@signals.task_postrun.connect
def _task_ended(**kwargs) -> None:
    from trial.logs import task_id as current_task_id

    current_task_id.set(None)
