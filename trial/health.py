"""What /healthz reports: can we reach the database and the Celery broker?"""

from django.db import connection

from trial.celery import app as celery_app


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the type goes to the answer, not the details
        return f"error: {type(exc).__name__}"
    return "ok"


def broker_status() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            # Opening a channel is what touches the broker (for the filesystem transport, its folder).
            conn.default_channel.close()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
