"""Greenroom settings, read from the environment.

Local development needs no configuration at all: SQLite, a broker that needs no server and the
console email backend. Production (DEBUG off) refuses to start without what it cannot guess.
"""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.logs import logging_config

django_stubs_ext.monkeypatch()  # generic admin/queryset classes at runtime

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GREENROOM_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def required_in_production(name: str, local_default: str) -> str:
    """A value production must set explicitly; local runs get a harmless default."""
    value = os.environ.get(name, "")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    return local_default


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = required_in_production("SECRET_KEY", "greenroom-local-development-only-not-secret")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")

GREENROOM_BASE_URL = required_in_production("GREENROOM_BASE_URL", "http://127.0.0.1:8000")
# No public default on purpose: the registry a team reviews against is always configured.
GREENROOM_REGISTRY_URL = env_str("GREENROOM_REGISTRY_URL")
GREENROOM_SYNC_TOKEN = env_str("GREENROOM_SYNC_TOKEN")
GREENROOM_SYNC_INTERVAL = env_int("GREENROOM_SYNC_INTERVAL", 60)
GREENROOM_REGISTRY_TIMEOUT = float(env_str("GREENROOM_REGISTRY_TIMEOUT", "10"))
GREENROOM_TARBALL_MAX_BYTES = env_int("GREENROOM_TARBALL_MAX_BYTES", 256 * 1024 * 1024)
# A worker's claim on a download or an analysis lives this long without a heartbeat (the
# running work refreshes it every third of it): how late a killed worker's work is taken over.
# Be gentle with the registry (reviews.mirror.throttle): tarball downloads at once, across every
# process sharing the cache, and the pause in seconds between two downloads' starts.
GREENROOM_DOWNLOAD_CONCURRENCY = env_int("GREENROOM_DOWNLOAD_CONCURRENCY", 2)
GREENROOM_DOWNLOAD_PAUSE = float(env_str("GREENROOM_DOWNLOAD_PAUSE", "0.2"))
GREENROOM_CLAIM_LEASE = env_int("GREENROOM_CLAIM_LEASE", 180)
if GREENROOM_CLAIM_LEASE < 1:
    raise ImproperlyConfigured("GREENROOM_CLAIM_LEASE must be at least 1 second")
# The review reads tarballs as untrusted input, within these bounds
# (reviews.inspect.archive.Limits).
GREENROOM_ANALYSIS_MAX_UNPACKED_BYTES = env_int(
    "GREENROOM_ANALYSIS_MAX_UNPACKED_BYTES", 512 * 1024 * 1024
)
GREENROOM_ANALYSIS_MAX_ENTRIES = env_int("GREENROOM_ANALYSIS_MAX_ENTRIES", 50_000)
GREENROOM_ANALYSIS_MAX_FILE_BYTES = env_int("GREENROOM_ANALYSIS_MAX_FILE_BYTES", 64 * 1024 * 1024)
GREENROOM_ANALYSIS_MAX_KEPT_BYTES = env_int("GREENROOM_ANALYSIS_MAX_KEPT_BYTES", 256 * 1024 * 1024)
# Risk rules (reviews/inspect/rules): bytes read per file, bytes parsed per code file, bytes
# parsed per release (both sides), and the seconds one release may take; what is skipped is
# listed as "not scanned".
GREENROOM_RULES_MAX_READ_BYTES = env_int("GREENROOM_RULES_MAX_READ_BYTES", 16 * 1024 * 1024)
GREENROOM_RULES_MAX_PARSE_BYTES = env_int("GREENROOM_RULES_MAX_PARSE_BYTES", 2 * 1024 * 1024)
GREENROOM_RULES_PARSE_BUDGET = env_int("GREENROOM_RULES_PARSE_BUDGET", 3 * 1024 * 1024)
GREENROOM_RULES_TIME_BUDGET = float(env_str("GREENROOM_RULES_TIME_BUDGET", "60"))
# a forked helper parses half the code when its half is at least this much (0: one core)
GREENROOM_RULES_HELPER_SHARE_BYTES = env_int("GREENROOM_RULES_HELPER_SHARE_BYTES", 256 * 1024)

# One file's diff in the page (reviews.inspect.diffing.InlineLimits); past these, a notice instead.
GREENROOM_DIFF_MAX_SIDE_BYTES = env_int("GREENROOM_DIFF_MAX_SIDE_BYTES", 1024 * 1024)
GREENROOM_DIFF_MAX_LINES = env_int("GREENROOM_DIFF_MAX_LINES", 20_000)
GREENROOM_DIFF_MAX_LINE_CHARS = env_int("GREENROOM_DIFF_MAX_LINE_CHARS", 5_000)
GREENROOM_DIFF_MAX_HIGHLIGHT_BYTES = env_int("GREENROOM_DIFF_MAX_HIGHLIGHT_BYTES", 512 * 1024)
GREENROOM_DIFF_MAX_LEXED_BYTES = env_int("GREENROOM_DIFF_MAX_LEXED_BYTES", 128 * 1024)
# Diffs are cached by content digests, so an entry never goes stale; this only bounds memory.
GREENROOM_DIFF_CACHE_SECONDS = env_int("GREENROOM_DIFF_CACHE_SECONDS", 7 * 24 * 3600)


def token_keys() -> list[str]:
    """GREENROOM_TOKEN_KEYS: comma-separated Fernet keys; the first encrypts, all decrypt.

    Generate one with `python -c "from cryptography.fernet import Fernet;
    print(Fernet.generate_key().decode())"`. Only a DEBUG run gets a fixed, public dev key.
    """
    keys = env_list("GREENROOM_TOKEN_KEYS", [])
    if not keys:
        if not DEBUG:
            raise ImproperlyConfigured(
                "GREENROOM_TOKEN_KEYS must be set when DEBUG is off: comma-separated Fernet keys "
                "that encrypt the npm tokens people link"
            )
        dev_key = hashlib.sha256(b"greenroom local development token key, not secret").digest()
        return [base64.urlsafe_b64encode(dev_key).decode()]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"GREENROOM_TOKEN_KEYS: key {number} is not a Fernet key "
                "(32 bytes, url-safe base64)"
            ) from None
    return keys


GREENROOM_TOKEN_KEYS = token_keys()
# Approve and reject run in the request, sent once: a short timeout, never a retry.
GREENROOM_DECISION_TIMEOUT = float(env_str("GREENROOM_DECISION_TIMEOUT", "15"))
# After an approve or reject that got no answer: how long the request itself keeps looking at
# the registry (every ..._CHECK_INTERVAL seconds) before it leaves the question to the sync
# pass, and after how long a stage still staged is taken as not changed by that request.
GREENROOM_DECISION_CHECK_SECONDS = float(env_str("GREENROOM_DECISION_CHECK_SECONDS", "5"))
GREENROOM_DECISION_CHECK_INTERVAL = float(env_str("GREENROOM_DECISION_CHECK_INTERVAL", "1"))
GREENROOM_DECISION_SETTLE_SECONDS = env_int("GREENROOM_DECISION_SETTLE_SECONDS", 120)
# Releases on the dashboard: pending stages without a shared gitHead belong together when the
# same npm user staged them within this many minutes of each other.
GREENROOM_RELEASE_WINDOW_MINUTES = env_int("GREENROOM_RELEASE_WINDOW_MINUTES", 15)
# How long a security-key challenge is waited for before the portal gives up on it.
GREENROOM_WEB_AUTH_TIMEOUT = env_int("GREENROOM_WEB_AUTH_TIMEOUT", 300)
# Notifications: how often due events are dispatched, how long a new stage's email waits for
# its analysis, the hour (UTC) daily digests go out, and what team webhooks may reach.
GREENROOM_NOTIFY_INTERVAL = env_int("GREENROOM_NOTIFY_INTERVAL", 30)
GREENROOM_NOTIFY_ANALYSIS_WAIT = env_int("GREENROOM_NOTIFY_ANALYSIS_WAIT", 300)
GREENROOM_DIGEST_HOUR = env_int("GREENROOM_DIGEST_HOUR", 8)
if not 0 <= GREENROOM_DIGEST_HOUR <= 23:
    raise ImproperlyConfigured("GREENROOM_DIGEST_HOUR must be an hour from 0 to 23")
GREENROOM_WEBHOOK_TIMEOUT = float(env_str("GREENROOM_WEBHOOK_TIMEOUT", "5"))
GREENROOM_WEBHOOK_ALLOW_PRIVATE = env_bool("GREENROOM_WEBHOOK_ALLOW_PRIVATE", False)
# The JSON API (reviews.api): requests each token may make per window (0: no limit).
GREENROOM_API_RATE_LIMIT = env_int("GREENROOM_API_RATE_LIMIT", 600)
GREENROOM_API_RATE_WINDOW = env_int("GREENROOM_API_RATE_WINDOW", 60)
if GREENROOM_API_RATE_WINDOW < 1:
    raise ImproperlyConfigured("GREENROOM_API_RATE_WINDOW must be at least 1 second")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    # Only for its bundled Swagger UI files: the API docs page loads them from our own static
    # files (no CDN, no inline script), so the Content-Security-Policy holds there too.
    "ninja",
    "reviews",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
# First: every log line of a request carries its id.
MIDDLEWARE.insert(0, "portal.observability.RequestIdMiddleware")

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
            # `bytes` and `number` in every template and email, without a {% load %}: the
            # one unit and number format (reviews/inspect/units.py).
            "builtins": ["reviews.templatetags.units"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'greenroom.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 20, "transaction_mode": "IMMEDIATE"})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "reviews:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"


def tarball_storage() -> dict[str, object]:
    """Where tarballs live: the local folder GREENROOM_TARBALL_DIR by default, or, when
    GREENROOM_S3_BUCKET is set, an S3-compatible bucket (django-storages), so that workers on
    other machines share them. Objects are private; a download streams from the bucket.
    Credentials: GREENROOM_S3_ACCESS_KEY_ID and GREENROOM_S3_SECRET_ACCESS_KEY, else boto3's
    usual chain (AWS_ACCESS_KEY_ID..., an instance role)."""
    bucket = env_str("GREENROOM_S3_BUCKET")
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": env_str("GREENROOM_TARBALL_DIR", str(VAR_DIR / "tarballs"))},
        }
    options: dict[str, object] = {
        "bucket_name": bucket,
        "location": env_str("GREENROOM_S3_PREFIX", "tarballs"),
        "default_acl": "private",
        "querystring_auth": True,  # never a public URL
        "querystring_expire": 60,
        "file_overwrite": False,
        "object_parameters": {"ContentType": "application/gzip"},
    }
    for option, variable in (
        ("endpoint_url", "GREENROOM_S3_ENDPOINT_URL"),  # MinIO, Ceph, moto...: http(s)://host:port
        ("region_name", "GREENROOM_S3_REGION"),
        ("access_key", "GREENROOM_S3_ACCESS_KEY_ID"),
        ("secret_key", "GREENROOM_S3_SECRET_ACCESS_KEY"),
        ("addressing_style", "GREENROOM_S3_ADDRESSING_STYLE"),  # "path" for most servers
    ):
        if env_str(variable):
            options[option] = env_str(variable)
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Tarballs live in their own storage so production can point it at private object storage.
    "tarballs": tarball_storage(),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Celery: Redis in production; locally a filesystem broker that needs no server.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "store_processed": False,
        # Kombu keeps its exchange bindings here; the default is a folder in the working dir.
        "control_folder": str(VAR_DIR / "broker-control"),
    }
    for _folder in (_queue_dir, VAR_DIR / "broker-control"):
        _folder.mkdir(parents=True, exist_ok=True)  # Kombu does not create its folders
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Two queues: analyses (seconds to minutes on a large package) have their own, so downloads,
# sync passes and emails never wait behind one. Run at least one worker on each
# (`celery -A portal worker -Q celery` and `-Q analysis`, or one worker with `-Q celery,analysis`).
CELERY_TASK_DEFAULT_QUEUE = env_str("GREENROOM_TASK_QUEUE", "celery")
GREENROOM_ANALYSIS_QUEUE = env_str("GREENROOM_ANALYSIS_QUEUE", "analysis")
CELERY_TASK_ROUTES = {"reviews.tasks.analyse_stage_task": {"queue": GREENROOM_ANALYSIS_QUEUE}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "sync-stages": {
        "task": "reviews.tasks.sync_stages_task",
        "schedule": float(GREENROOM_SYNC_INTERVAL),
    },
    "notifications-sweep": {
        "task": "reviews.tasks.notifications_sweep_task",
        "schedule": float(GREENROOM_NOTIFY_INTERVAL),
    },
    # Hourly: a missed hour is caught up by the next, and both are once-only by design.
    "notification-reminders": {
        "task": "reviews.tasks.reminders_task",
        "schedule": crontab(minute=5),
    },
    "notification-digests": {
        "task": "reviews.tasks.digests_task",
        "schedule": crontab(minute=0),
    },
}

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # One machine, several processes (web, worker, beat): they share what they cache (cached
    # diffs, the "queued for analysis" marks) through files rather than each in its memory.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "emails"))  # the file backend's folder
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one")
# Seconds an SMTP conversation may block a worker (Django's default is forever).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "greenroom@localhost")

# Production hardening; all of it is what `manage.py check --deploy` asks for.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response: scripts, styles, images and XHR from our own origin
# only, so no inline script, event handler, `javascript:` URL, inline style or <style> block
# runs (the pages have none; tests/portal/test_csp.py keeps it so). Forms post only here, no
# page can be framed, and <base> and plugins are off. htmx's own <style> is switched off in
# base.html's htmx-config, its indicator styles live in greenroom.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A refused form says what to do (allow cookies, or reload): portal/errors.py.
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"

# Structured logs (portal/logs.py): one JSON object per line, or readable lines for people.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = logging_config(env_str("LOG_LEVEL", "INFO"), LOG_FORMAT)

# /metrics (portal/metrics.py) answers staff sessions, and a scraper that sends
# `Authorization: Bearer <GREENROOM_METRICS_TOKEN>` when that is set.
GREENROOM_METRICS_TOKEN = env_str("GREENROOM_METRICS_TOKEN")
