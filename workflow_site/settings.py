"""Loupe settings: environment variables only, safe defaults.

DEBUG is off unless asked for; outside DEBUG a missing SECRET_KEY is an error.
Without DATABASE_URL / CELERY_BROKER_URL Loupe runs on the embedded default:
SQLite in WAL mode and kombu's filesystem transport (no server to install).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from workflow_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LOUPE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (make run generates one in var/secret_key)."
        )
    SECRET_KEY = "insecure-debug-only-key"

# No wildcard by default: only the local machine.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must not contain '*': list the host names Loupe serves.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "workflow_site",
    "governance",
    "annotations",
    "models_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "workflow_site.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workflow_site.middleware.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "workflow_site.urls"
WSGI_APPLICATION = "workflow_site.wsgi.application"

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
                "workflow_site.context_processors.roles",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------
SQLITE_PATH = Path(env_str("LOUPE_SQLITE_PATH", str(VAR_DIR / "loupe.sqlite3")))
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    # One test database per test process, so parallel runs do not collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # WAL lets readers work while one writer writes; the busy timeout
                # makes a second writer wait instead of failing at once.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                # BEGIN IMMEDIATE: a transaction takes the write lock up front, so
                # two read-then-write transactions cannot deadlock on upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("SQLITE_BUSY_TIMEOUT_S", 20),
            },
            # A file, not :memory:, so a Celery worker process can share the
            # test database; one per test process, so parallel runs do not collide.
            "TEST": {"NAME": str(VAR_DIR / f"test_loupe_{os.getpid()}.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = str(DATABASES["default"]["NAME"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth and sessions ------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE_S", 8 * 60 * 60)  # one working day
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Served over HTTPS unless told otherwise (make run serves plain HTTP locally).
# With HTTPS on, plain-HTTP requests are redirected (the proxy in front must set
# X-Forwarded-Proto) and browsers are told by HSTS to use HTTPS only, for a year,
# subdomains included. Each is an environment override.
HTTPS = env_bool("HTTPS", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# Probes from inside (load balancer, orchestrator) call /health/ over plain HTTP;
# a redirect would answer for them without checking the database or broker.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# "preload" only makes the domain eligible for the browsers' built-in HTTPS-only
# list; it gets there when submitted (hstspreload.org, apex domains only), and
# leaving the list takes months. Set SECURE_HSTS_PRELOAD=false to withhold it.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- I18N / time ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static ---------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env_bool("LOUPE_PLAIN_STATIC", False)
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Uploads and artifacts -----------------------------------------------
ARTIFACT_ROOT = Path(env_str("LOUPE_ARTIFACT_DIR", str(VAR_DIR / "artifacts")))
# Imports run inside the request (gunicorn --timeout 300): ~50 MB validates well within it.
IMPORT_MAX_BYTES = env_int("LOUPE_IMPORT_MAX_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Celery ---------------------------------------------------------------
BROKER_DIR = Path(env_str("LOUPE_BROKER_DIR", str(VAR_DIR / "broker")))
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: messages are files in one folder, shared by
    # the web process, the worker and beat. No server to install.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # state lives in our own tables (TrainingRun)
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message for another
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "models_app.tasks.training_run_execute": {"queue": "ml"},
    "models_app.tasks.predictions_refresh": {"queue": "ml"},
}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT_S", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BEAT_SCHEDULE = {
    # The outbox sweep: training runs saved while the broker was down are sent
    # again, and a retraining policy met while its after-commit check was lost
    # (a crash between commit and check) queues its run.
    "training-runs-sweep": {
        "task": "models_app.tasks.training_runs_sweep",
        "schedule": env_int("LOUPE_DISPATCH_EVERY_S", 60),
    },
    # Open items still showing an old (or no) prediction get the champion's.
    "predictions-refresh-sweep": {
        "task": "models_app.tasks.predictions_refresh_sweep",
        "schedule": env_int("LOUPE_REPREDICT_EVERY_S", 300),
    },
}
# A queued run not picked up within this many seconds is sent to the broker again.
LOUPE_REDISPATCH_AFTER_S = env_int("LOUPE_REDISPATCH_AFTER_S", 120)
# How long a reviewer holds an item before another reviewer may get it.
LOUPE_LEASE_SECONDS = env_int("LOUPE_LEASE_SECONDS", 10 * 60)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF answers a request without credentials from the first
    # class's authenticate_header, so it gets 401 with `WWW-Authenticate: Token`
    # (session auth has no such header and would make it a 403). Session auth
    # still enforces CSRF for the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "workflow_site.api_schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "workflow_site.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loupe API",
    "DESCRIPTION": "Human-in-the-loop review of model predictions, with four-eyes promotion and an audit trail.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["rest_framework.permissions.IsAuthenticated"]
