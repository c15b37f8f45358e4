"""Django settings for logplatform.

Every value that differs between machines comes from an environment
variable. The defaults point at the services that `scripts/services.sh`
starts on 127.0.0.1, so a development checkout runs without any
configuration. The README lists each variable with its default.
"""

from pathlib import Path

from logplatform.env import (
    check_production_secret_key,
    database_from_url,
    env_bool,
    env_day_overrides,
    env_float,
    env_int,
    env_list,
    env_str,
    proxy_ssl_header,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", True)
# For development only: with DEBUG off, start-up fails unless
# DJANGO_SECRET_KEY contains a key of your own.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-change-me-in-production"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG:
    check_production_secret_key(SECRET_KEY, DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# HTTPS. Each default is on when DEBUG is off. Behind a proxy that ends TLS,
# set DJANGO_SECURE_PROXY_SSL_HEADER to the header it sets to "https" (such
# as X-Forwarded-Proto), so Django treats those requests as secure and does
# not redirect them forever. Set it only if the proxy overwrites that header
# on every request, or clients could claim HTTPS themselves.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(
    env_str("DJANGO_SECURE_PROXY_SSL_HEADER", "")
)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Strict-Transport-Security: browsers use only HTTPS for this many seconds
# (a year by default with DEBUG off), on subdomains too, and the header
# allows the host to be added to the browsers' preload lists.
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG
)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "django_celery_beat",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "logs",
    "alerts",
    "analytics",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "logplatform.urls"
WSGI_APPLICATION = "logplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": database_from_url(
        env_str(
            "DATABASE_URL",
            "postgres://logplatform:logplatform@127.0.0.1:5432/logplatform",
        )
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# In development, serve the admin's and the browsable API's assets straight
# from the apps, so they load even before collectstatic has run.
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "/api-auth/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "logs.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["logs.parsers.JSONBodyParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "logplatform.schema.AutoSchema",
}

# The OpenAPI schema at /api/schema/ and its Swagger UI page at /api/docs/.
# Swagger UI is served from drf-spectacular-sidecar's static files, so the
# page works without reaching a CDN. Redoc is left out because its page
# loads fonts from Google.
SPECTACULAR_SETTINGS = {
    "TITLE": "logplatform API",
    "DESCRIPTION": (
        "Send log entries with an API key, and read logs, stats, alerts and "
        "notifications as a signed-in user."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Kafka: the intake API produces every accepted entry to KAFKA_TOPIC and the
# consume_logs command reads it back in batches.
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_TOPIC = env_str("KAFKA_TOPIC", "logs")
KAFKA_DLQ_TOPIC = env_str("KAFKA_DLQ_TOPIC", "logs.dlq")
KAFKA_CONSUMER_GROUP = env_str("KAFKA_CONSUMER_GROUP", "logplatform-consumer")
# How long the API waits for Kafka's delivery reports before it hands the
# entries to the Celery fallback, in milliseconds.
KAFKA_DELIVERY_TIMEOUT_MS = env_int("KAFKA_DELIVERY_TIMEOUT_MS", 5000, minimum=100)
# After Kafka fails, the API sends straight to the fallback for this many
# seconds before it tries Kafka again.
KAFKA_RETRY_AFTER_FAILURE_SECONDS = env_float("KAFKA_RETRY_AFTER_FAILURE_SECONDS", 5.0)
# Kafka's default maximum record size is about 1 MiB; entries above this
# limit are rejected at intake with a 400.
KAFKA_MAX_MESSAGE_BYTES = env_int("KAFKA_MAX_MESSAGE_BYTES", 1_000_000, minimum=1024)

# Consumer batching: a batch closes at this many entries or this many
# seconds after its first entry, whichever comes first.
CONSUMER_BATCH_SIZE = env_int("CONSUMER_BATCH_SIZE", 5000, minimum=1)
CONSUMER_BATCH_SECONDS = env_float("CONSUMER_BATCH_SECONDS", 0.5)
CONSUMER_STATS_SECONDS = env_float("CONSUMER_STATS_SECONDS", 30.0)
# The maximum amount of message data, in KiB, that librdkafka prefetches into
# the consumer's queue ahead of the batches (`queued.max.messages.kbytes`).
# Its own default, 65536 KiB, becomes resident memory whenever a backlog
# builds up. 8192 KiB is about four batches of 5,000 entries of 400 bytes.
KAFKA_CONSUMER_QUEUE_MAX_KBYTES = env_int(
    "KAFKA_CONSUMER_QUEUE_MAX_KBYTES", 8192, minimum=1
)

# Intake limits. A gzip-encoded body is held to INTAKE_MAX_BODY_BYTES both as
# sent and once decompressed.
INTAKE_MAX_BATCH = env_int("INTAKE_MAX_BATCH", 10_000, minimum=1)
INTAKE_MAX_BODY_BYTES = env_int("INTAKE_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024)
INTAKE_MAX_MESSAGE_LENGTH = env_int("INTAKE_MAX_MESSAGE_LENGTH", 256 * 1024, minimum=1)
INTAKE_MAX_METADATA_DEPTH = env_int("INTAKE_MAX_METADATA_DEPTH", 32, minimum=1)
# Keys of an entry's metadata, counted over every nested object. Each key
# adds to the entry's metadata index entries and to every read of the row.
INTAKE_MAX_METADATA_KEYS = env_int("INTAKE_MAX_METADATA_KEYS", 1000, minimum=1)
INTAKE_RETRY_AFTER_SECONDS = env_int("INTAKE_RETRY_AFTER_SECONDS", 5, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = INTAKE_MAX_BODY_BYTES
# Backpressure: intake returns 503 while the consumer group's lag on
# KAFKA_TOPIC or the tasks waiting in the Celery queue exceed these limits.
# Each API process reads both figures at most once per INTAKE_LOAD_CHECK_SECONDS.
# NOTE: the default limits are estimates, not measured on a loaded pipeline.
INTAKE_MAX_CONSUMER_LAG = env_int("INTAKE_MAX_CONSUMER_LAG", 1_000_000, minimum=0)
INTAKE_MAX_QUEUED_TASKS = env_int("INTAKE_MAX_QUEUED_TASKS", 1000, minimum=0)
INTAKE_LOAD_CHECK_SECONDS = env_float("INTAKE_LOAD_CHECK_SECONDS", 5.0)

# Entries per second that one ingest key may send (0 for no limit), and the
# most it may send at once after a pause. A key's rate_limit and rate_burst
# fields take their place. The counts are kept in Redis at REDIS_URL.
INTAKE_RATE_LIMIT = env_int("INTAKE_RATE_LIMIT", 10_000, minimum=0)
INTAKE_RATE_BURST = env_int("INTAKE_RATE_BURST", 50_000, minimum=1)

# Celery, with Redis as the broker. Tasks are acknowledged after they finish
# (acks_late), so a worker that dies mid-batch leaves the batch in Redis to
# be delivered again. The insert then skips the ids already stored.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A batch not acknowledged within this many seconds is delivered again.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=60),
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Bounds on the fallback publish from the API: when Redis is down the client
# gets a 503 within about a second instead of a hanging request.
CELERY_FALLBACK_PUBLISH_RETRIES = env_int(
    "CELERY_FALLBACK_PUBLISH_RETRIES", 2, minimum=0
)

# Retention: entries are kept this many days after they arrived (0 keeps
# them forever), with per-service exceptions written "audit=365,debug=3".
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 30, minimum=0)
LOG_RETENTION_OVERRIDES = env_day_overrides("LOG_RETENTION_OVERRIDES")
# Rows deleted per statement, each in its own transaction.
LOG_PURGE_BATCH_SIZE = env_int("LOG_PURGE_BATCH_SIZE", 10_000, minimum=1)
# The logs table has one partition per day of arrival. The maintenance task
# keeps partitions ready for today and this many days after.
LOG_PARTITION_DAYS_AHEAD = env_int("LOG_PARTITION_DAYS_AHEAD", 3, minimum=1)
# An event id is remembered this many days after its entry arrived; a copy
# of the entry sent again within that time is not stored a second time.
LOG_DEDUP_DAYS = env_int("LOG_DEDUP_DAYS", 3, minimum=1)

# Patterns: the worker groups each entry under a message template learned
# per service. Beyond PATTERN_MAX_PER_SERVICE templates in a service, its
# entries that fit none of them are stored without a pattern.
PATTERN_MINING_ENABLED = env_bool("PATTERN_MINING_ENABLED", True)
PATTERN_MAX_PER_SERVICE = env_int("PATTERN_MAX_PER_SERVICE", 1000, minimum=1)

# Alert rules. Each evaluation reaches back at least this far past the
# previous one, so entries stored a little after they were accepted still
# count. Per-service absence rules watch the services seen this many hours back.
ALERTS_LATE_ARRIVAL_SECONDS = env_int("ALERTS_LATE_ARRIVAL_SECONDS", 15, minimum=0)
ALERTS_ABSENCE_LOOKBACK_HOURS = env_int("ALERTS_ABSENCE_LOOKBACK_HOURS", 24, minimum=1)
# New-pattern rules stay quiet for this many minutes after a service's first
# pattern, while every template the service logs is still new.
PATTERN_LEARNING_MINUTES = env_int("PATTERN_LEARNING_MINUTES", 60, minimum=0)

# Alert notifications. A failed send is retried after BASE, 2 x BASE, 4 x BASE
# ... seconds, each wait capped at MAX, until MAX_ATTEMPTS attempts in all.
# A pending delivery still unsent GRACE seconds after it was due is queued
# again by the redeliver_pending task.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
NOTIFICATION_TIMEOUT_SECONDS = env_float("NOTIFICATION_TIMEOUT_SECONDS", 10.0)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 8, minimum=1)
NOTIFICATION_RETRY_BASE_SECONDS = env_float("NOTIFICATION_RETRY_BASE_SECONDS", 5.0)
NOTIFICATION_RETRY_MAX_SECONDS = env_float("NOTIFICATION_RETRY_MAX_SECONDS", 600.0)
NOTIFICATION_REDELIVER_GRACE_SECONDS = env_float(
    "NOTIFICATION_REDELIVER_GRACE_SECONDS", 120.0
)

# E-mail, sent through Django's mail API. The SMTP server gets the
# notification timeout above.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = NOTIFICATION_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "logplatform@localhost")

# Command-line client used by ingest_file.
LOGPLATFORM_API_URL = env_str("LOGPLATFORM_API_URL", "http://127.0.0.1:8000/api/logs/")

# Folder of real log samples (Loghub and others). The tests read them, and
# generate_logs builds messages from Loghub's templates when they are there.
# A relative path is taken from the project root.
LOGPLATFORM_TEST_DATA = env_str("LOGPLATFORM_TEST_DATA", "../shared/data")

# Health and metrics. Each dependency probe of /readyz and of the intake's
# load check gives up after DEPENDENCY_TIMEOUT_SECONDS. /readyz fails while
# the consumer group's lag exceeds READY_MAX_CONSUMER_LAG.
DEPENDENCY_TIMEOUT_SECONDS = env_float("DEPENDENCY_TIMEOUT_SECONDS", 1.5)
READY_MAX_CONSUMER_LAG = env_int("READY_MAX_CONSUMER_LAG", 1_000_000, minimum=0)
# With a token, /metrics requires "Authorization: Bearer <token>"; without
# one, anyone who reaches the API may read it.
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")
# prometheus_client reads this variable itself; see ops/metrics.py.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "logs": {"level": LOG_LEVEL},
        "alerts": {"level": LOG_LEVEL},
        "logplatform": {"level": LOG_LEVEL},
        "ops": {"level": LOG_LEVEL},
    },
}

# Analytics: the periodic analytics.roll_up task recomputes every minute
# bucket touched by entries that arrived in this many last minutes.
ROLLUP_RECOMPUTE_MINUTES = env_int("ROLLUP_RECOMPUTE_MINUTES", 5, minimum=1)
LOGGING["loggers"]["analytics"] = {"level": LOG_LEVEL}
