"""Settings for the Family Partner trial management system.

Everything that differs between a laptop, CI and production comes from the environment
(see `.env.example` and docs/deployment.md). `TRIAL_ENV=production` turns on the strict checks:
the process refuses to start with DEBUG on, a default SECRET_KEY or no encryption key.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF, UNSAFE_HASHES
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TRIAL_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# pytest (8.2+) sets PYTEST_VERSION for its session: a test run never touches development data.
TRIAL_ENV = os.environ.get("TRIAL_ENV") or ("test" if "PYTEST_VERSION" in os.environ else "development")
if TRIAL_ENV not in ("development", "test", "production"):
    raise ImproperlyConfigured(f"TRIAL_ENV must be development, test or production, not {TRIAL_ENV!r}")
PRODUCTION = TRIAL_ENV == "production"

DEBUG = envbool("DJANGO_DEBUG", "false" if PRODUCTION else "true")
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"  # noqa: S105 (refused in production)
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)


def _encryption_keys() -> list[str]:
    keys = envlist("ENCRYPTION_KEYS")
    if keys or PRODUCTION:
        return keys
    if TRIAL_ENV == "test":
        return ["dGVzdC1vbmx5LWtleS10ZXN0LW9ubHkta2V5LTAwMDA="]  # a fixed, public key for test data only
    # Development and tests keep a local key file so that `make run` works on a fresh machine;
    # it is created by `manage.py ensure_encryption_key` and never committed (var/ is ignored).
    key_file = VAR_DIR / "encryption.key"
    if key_file.exists():
        return [key_file.read_text().strip()]
    return []


# Direct identifiers are encrypted with the first key; the others still decrypt (key rotation).
ENCRYPTION_KEYS = _encryption_keys()

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("Refusing to start: DJANGO_DEBUG is on with TRIAL_ENV=production.")
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Refusing to start: set SECRET_KEY to a random value of 50+ characters.")
    if not ENCRYPTION_KEYS:
        raise ImproperlyConfigured("Refusing to start: set ENCRYPTION_KEYS (a Fernet key) for direct identifiers.")
    try:
        for _key in ENCRYPTION_KEYS:
            Fernet(_key.encode())
    except ValueError:
        raise ImproperlyConfigured(
            "Refusing to start: ENCRYPTION_KEYS holds a value that is not a Fernet key."
        ) from None

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "axes",
    "csp",
    "django_celery_beat",
    "trial",
    "notifications",
    "families",
    "randomization",
    "visits",
    "followups",
    "reminders",
    "reports",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "monitoring",
]

MIDDLEWARE = [
    # First: every later middleware's log lines, and every response (redirects too), carry the request's id.
    "trial.logs.RequestIdMiddleware",
    # Then the metrics, so that they count and time what the rest does (static files and refusals too).
    "monitoring.middleware.RequestMetrics",
    # Outside all the rest: whether a write was committed before a lost database connection decides what its 503 says.
    "trial.errors.NoteWhatWasCommitted",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "trial.middleware.NoStoreForSignedInUsers",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "trial.urls"
WSGI_APPLICATION = "trial.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trial.context_processors.navigation",
                "visits.context_processors.slot_alerts",
                "notifications.context_processors.inbox",
            ],
        },
    },
]

# SQLite by default so that a checkout just runs; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'trial.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0"),
        # A kept connection may have been closed by PostgreSQL (a restart, an administrator, a network drop): check
        # it before each request's first query and open a new one, instead of failing that request with a 500.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing
    # half-way with "database is locked"; the timeout is how long one waits its turn.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TRIAL_ENV == "test":
    # Tests make hundreds of users; Argon2's deliberate slowness would dominate the suite.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins lock the username out for a while (per username and address).
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_MINUTES", "30") / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The address is the client's: behind TRUSTED_PROXY_COUNT reverse proxies, the one the nearest of them put in
# X-Forwarded-For; with none (the default), the connection's, and the header is ignored (trial/proxy.py).
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", "0")
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, not {TRUSTED_PROXY_COUNT}")
AXES_CLIENT_IP_CALLABLE = "trial.proxy.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Sessions end after a period of inactivity: every request renews the expiry.
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", "30") * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

if PRODUCTION:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "true")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if envbool("TRUST_X_FORWARDED_PROTO", "false"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp): everything from our own origin, no inline script or style at all, so that
# text someone managed to slip into a page could not run. Bootstrap's stylesheet draws its icons (the menu button,
# select arrows, ticked boxes) as data: images. The one inline style we cannot remove is in django-simple-history's
# admin page of a record's history (its paginator's "border-top: 0"): allowed by its hash, and nothing else.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],
        "style-src-attr": [UNSAFE_HASHES, "'sha256-XMXSevYjgSjXgRafBFDvtjwX+yyWLrxfso9DcNZ9UXM='"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nb", _("Norwegian Bokmål"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["trial.formats"]
TIME_ZONE = "Europe/Oslo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# The REST API (api/, docs/api.md): personal tokens only (no sessions, so no CSRF to think of), JSON in and out,
# problem details for every error, throttled per token.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "api.permissions.TokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle", "api.throttling.TokenWriteRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Calls per token: all calls, and the ones that change something.
API_RATE = os.environ.get("API_RATE", "600/min")
API_WRITE_RATE = os.environ.get("API_WRITE_RATE", "120/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "Family Partner trial API",
    "DESCRIPTION": "Families, randomisation, follow-up assessments, the analysis datasets and the audit log, for "
    "scripts and other systems, with the same rules as the pages. Authenticate with a personal token from your "
    "profile page: `Authorization: Bearer fpt_...`. Errors are problem details (RFC 9457).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "api.schema.add_problem_responses"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN; its start script is a file too
    # (SpectacularSwaggerSplitView), so the Content-Security-Policy holds.
    # Choice sets that share a field name ("status") get names of their own in the schema.
    "ENUM_NAME_OVERRIDES": {"FamilyStatusEnum": "families.models.FamilyStatus"},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "deepLinking": True},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport, which needs no
# server, so that `make run` works on a machine with nothing installed.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND: str | None = REDIS_URL
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # A user's request publishes to the broker after its commit (notifications.services._kick_delivery): with
    # Redis stopped or unreachable, that publish gives up within seconds and never retries, and the request
    # succeeds; the sweep (`deliver-messages` below) delivers what was never queued (docs/deployment.md gives the
    # measured times).
    # A task taken by a worker that died goes back to the queue after `visibility_timeout` (Redis' default is an
    # hour). Messages do not depend on it (the sweep takes a claim older than MESSAGE_CLAIM_LEASE_SECONDS again);
    # the other jobs do, so it is minutes, and longer than any task runs, so a running task is never given twice.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT_SECONDS", "600"),
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
        "max_retries": 0,
    }
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
    CELERY_REDIS_SOCKET_TIMEOUT = 2
    CELERY_BROKER_CONNECTION_TIMEOUT = 2
else:
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "celery-broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every scheduled job of the trial, in one place.
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {"task": "trial.tasks.clear_expired_sessions", "schedule": 60 * 60},
    "deliver-messages": {"task": "notifications.tasks.deliver_due", "schedule": envint("MESSAGE_SWEEP_SECONDS", "60")},
    "verify-allocation-lists": {"task": "randomization.tasks.verify_allocation_lists", "schedule": 24 * 60 * 60},
    # Reminders, in Europe/Oslo (CELERY_TIMEZONE): the daily sweep, and the Family Partners' Monday summary.
    "reminders-daily": {
        "task": "reminders.tasks.sweep",
        "schedule": crontab(hour=6, minute=0),
        "kwargs": {"part": "daily"},
    },
    "reminders-weekly": {
        "task": "reminders.tasks.sweep",
        "schedule": crontab(hour=7, minute=0, day_of_week="mon"),
        "kwargs": {"part": "weekly"},
    },
}

# JSON lines in production (one object per record, with the request's or task's id: trial/logs.py), plain text in
# development and tests. Nothing the app logs names a family: ids, counts and study IDs only.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json" if PRODUCTION else "plain").strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "trial.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "trial.logs.json_formatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Axes would log the username and address of every failed login; keep it to warnings.
        "axes": {"level": "WARNING"},
        # WeasyPrint and its font library log every step of every PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Messages (notifications/services.py): a worker that claimed a message and died is replaced after the lease (the
# message is then sent again, at most once more); a failed send is tried again after the backoff, doubled each time,
# and the message is marked failed after MESSAGE_MAX_ATTEMPTS sends. Tests shorten them.
MESSAGE_CLAIM_LEASE_SECONDS = envint("MESSAGE_CLAIM_LEASE_SECONDS", "300")
MESSAGE_BACKOFF_SECONDS = envint("MESSAGE_BACKOFF_SECONDS", "60")
MESSAGE_MAX_ATTEMPTS = envint("MESSAGE_MAX_ATTEMPTS", "6")
if MESSAGE_CLAIM_LEASE_SECONDS < 1 or MESSAGE_BACKOFF_SECONDS < 0 or MESSAGE_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("MESSAGE_CLAIM_LEASE_SECONDS and MESSAGE_MAX_ATTEMPTS must be 1 or more")

# In development (`make run`) mail is written to files under var/mail, one per message, so the demo shows it;
# production and tests name their backend (tests get Django's locmem outbox).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if TRIAL_ENV == "development"
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))

# In production the processes' temporary files (the Excel, Stata and SPSS downloads are written through them) go
# under TRIAL_VAR_DIR/tmp: the volume the operator sizes and watches. Python's own choice (TMPDIR) moves silently to
# /tmp, inside the container, when that folder is full at the first use, and stays there.
if PRODUCTION:
    TEMPORARY_FILES_DIR = VAR_DIR / "tmp"
    TEMPORARY_FILES_DIR.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(TEMPORARY_FILES_DIR)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25")
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", "10")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "familypartner@localhost")

# /metrics (monitoring/views.py) answers only a request with `Authorization: Bearer <METRICS_TOKEN>`; unset, the
# address does not exist (404). Gunicorn's workers share their counts through PROMETHEUS_MULTIPROC_DIR
# (trial/gunicorn.conf.py sets it).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
