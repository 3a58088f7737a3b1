#!/bin/sh
# Every container of the trial (web, worker, beat, migrate) starts here.
set -eu

# Files the processes create (logs, temporary exports) are for the trial's user only.
umask 0077

if [ "${1:-}" = "gunicorn" ]; then
    # Gunicorn runs no system checks of its own: an error (a broken setting or model) stops the web
    # container here, and deployment warnings are printed to its log.
    python manage.py check --deploy
fi

exec "$@"
