# The production image of the Family Partner trial: one image for web, worker, beat and the migrate job
# (see docker-compose.yml and docs/deployment.md).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRIAL_ENV=production \
    TRIAL_VAR_DIR=/var/lib/trial

RUN groupadd --system --gid 10001 trial \
    && useradd --system --uid 10001 --gid trial --home-dir /app --shell /usr/sbin/nologin trial \
    && install --directory --owner trial --group trial --mode 0700 /var/lib/trial

WORKDIR /app

# WeasyPrint (the report's PDF) draws text with Pango; DejaVu gives it the Norwegian letters. `manage.py backup` and
# `restore_backup` run pg_dump and pg_restore (15, as the compose file's postgres).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
        postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# Runtime dependencies only (not requirements-dev.txt); every wheel needed is prebuilt, so no compiler.
COPY requirements.txt .
RUN pip install --requirement requirements.txt

COPY . .

# The Norwegian texts are compiled into locale/*/LC_MESSAGES/django.mo and committed; without them the
# image would silently serve English only.
RUN test -f locale/nb/LC_MESSAGES/django.mo \
    || { echo "locale/nb/LC_MESSAGES/django.mo is missing: run 'make messages' and commit it." >&2; exit 1; }

# Production settings refuse to load without secrets, so collectstatic gets throwaway ones that exist
# only in this RUN step: nothing is written to the image's environment or files.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    python manage.py collectstatic --noinput

USER trial
EXPOSE 8000
ENTRYPOINT ["/bin/sh", "/app/docker/entrypoint.sh"]
CMD ["gunicorn", "--config", "trial/gunicorn.conf.py", "trial.wsgi"]
