"""Loupe settings: environment variables only, safe defaults.

DEBUG is off unless asked for; outside DEBUG a missing SECRET_KEY is an error.
Without DATABASE_URL / CELERY_BROKER_URL Loupe runs on the embedded default:
SQLite in WAL mode and kombu's filesystem transport (no server to install).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from workflow_site.env import env_bool, env_int, env_list, env_optional_days, env_str

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
    "drf_spectacular",
    # Swagger UI's files, served from our static/ (no CDN): /api/docs/.
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "workflow_site",
    "governance",
    "annotations",
    "models_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, so static files keep their long-lived headers; every
    # other response is `private, no-store` and varies on HX-Request.
    "workflow_site.http_headers.NoStoreMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "workflow_site.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After auth, sessions, messages and htmx: a user whose password a site admin
    # set is sent to the password-change page from every page (governance/credentials.py).
    "governance.middleware.PasswordChangeRequiredMiddleware",
    "workflow_site.middleware.HtmxLoginRedirectMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during authenticate()
    # into the lockout page, whatever view (/login/ or /admin/login/) ran.
    "axes.middleware.AxesMiddleware",
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
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The review loop's fixed statements are prepared from their second run on a connection
        # (workflow_site/prepared_sql.py); 0 turns preparing off (a pooler that cannot keep them).
        prepare_threshold = env_int("DB_PREPARE_THRESHOLD", 2)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = prepare_threshold or None
        # No parallel workers per query unless asked for. Loupe's queries are index walks of a page or a
        # chunk; the planner still chose a parallel plan for some list filters at 1M items, and starting
        # the workers took longer than the query (bench/item_list.py: gold label + flagged 10.5 → 3.4 ms,
        # the audit slice by confidence 30 → 12 ms), while taking cores from the other requests.
        # Sent as a startup option; "server" sends none and leaves the server's (or the role's) setting, for
        # a pooler that refuses startup options (PgBouncer's default): there, ALTER ROLE … SET it instead.
        parallel = env_str("DB_PARALLEL_WORKERS_PER_QUERY").strip() or "0"  # unset or empty: the default
        if parallel != "server":
            if not (parallel.isascii() and parallel.isdigit()):
                raise ImproperlyConfigured(
                    f"DB_PARALLEL_WORKERS_PER_QUERY={parallel!r} is not a number of workers (0 or more) nor 'server'."
                )
            options = DATABASES["default"]["OPTIONS"]
            setting = f"-c max_parallel_workers_per_gather={int(parallel)}"
            options["options"] = f"{options.get('options', '')} {setting}".strip()
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
# Login throttling (django-axes). AxesStandaloneBackend comes first: it refuses
# a locked-out client before any password is checked, for every authenticate()
# call with a request (/login/ and /admin/login/ both). It logs no one in;
# ModelBackend does that (workflow_site/auth_backend.py: ModelBackend, loading the session's user with
# their roles in one statement). Failed attempts live in axes' own tables
# (AccessAttempt, AccessFailureLog), not on the audit chain; a lockout itself is
# one `auth.locked_out` audit event (governance/auth_audit.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "workflow_site.auth_backend.RoleReadingModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
# An int is hours to axes; a timedelta says what it means. Zero would mean
# "locked until an admin unlocks", which turns every typo streak into a ticket.
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_COOLOFF_MINUTES < 1 or AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES must be at least 1.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Lock the (username, client IP) pair, not the username alone and not the IP
# alone. By username alone, anyone anywhere could lock a reviewer out of Loupe
# by typing five wrong passwords for them; by IP alone, one mistyping colleague
# behind the office NAT would lock out the whole office. The pair stops password
# guessing against an account from one place. What it does not stop on its own
# is one IP spraying many usernames, or many IPs (a botnet) guessing one
# account: each pair gets its own five tries per cool-off.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A good password clears the pair's count, so yesterday's typos do not add up.
AXES_RESET_ON_SUCCESS = True
# A try during a lockout (right password or wrong) starts the cool-off again
# (axes' default, stated because the lockout page says so).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
# Every failure, with its path and user agent, for the admin's "Access failures"
# list; capped per username by axes (AXES_ACCESS_FAILURE_LOG_PER_USER_LIMIT).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# The lockout page: the sign-in template in its locked state, answered with
# 429 Too Many Requests (axes' default code, kept: the client is being told to
# slow down, and 403 would read as "you may never").
AXES_LOCKOUT_TEMPLATE = "registration/login.html"
AXES_HTTP_RESPONSE_CODE = 429
# The client IP, via django-ipware. The default trusts only REMOTE_ADDR, the
# peer of the TCP connection, which a client cannot forge. Behind a reverse
# proxy every client then shares the proxy's address, and the lockout falls
# back to per-username; set, for one proxy that appends the client to
# X-Forwarded-For: AXES_IPWARE_META_PRECEDENCE_ORDER=HTTP_X_FORWARDED_FOR,REMOTE_ADDR
# and AXES_IPWARE_PROXY_ORDER=right-most. The right-most entry is the one the
# proxy wrote; anything to its left is whatever the client sent, so left-most
# would let an attacker name a fresh "IP" on every try. Longer proxy chains:
# AXES_IPWARE_PROXY_COUNT (see django-ipware).
AXES_IPWARE_META_PRECEDENCE_ORDER = env_list("AXES_IPWARE_META_PRECEDENCE_ORDER", ["REMOTE_ADDR"])
AXES_IPWARE_PROXY_ORDER = env_str("AXES_IPWARE_PROXY_ORDER", "left-most")
if AXES_IPWARE_PROXY_ORDER not in {"left-most", "right-most"}:
    raise ImproperlyConfigured("AXES_IPWARE_PROXY_ORDER must be left-most or right-most.")
AXES_IPWARE_PROXY_COUNT = env_int("AXES_IPWARE_PROXY_COUNT", 0) or None

# API tokens (governance/credentials.py): only a hash is stored, every token expires.
LOUPE_API_TOKEN_DEFAULT_DAYS = env_int("LOUPE_API_TOKEN_DEFAULT_DAYS", 30)
LOUPE_API_TOKEN_MAX_DAYS = env_int("LOUPE_API_TOKEN_MAX_DAYS", 90)
if not 1 <= LOUPE_API_TOKEN_DEFAULT_DAYS <= LOUPE_API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured("LOUPE_API_TOKEN_DEFAULT_DAYS must be between 1 and LOUPE_API_TOKEN_MAX_DAYS.")

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

# --- Content-Security-Policy (django-csp) ---------------------------------
# Strict: every script and stylesheet comes from our own static files (htmx is
# vendored, loupe.js holds all behaviour), so no inline <script>, no style=
# attribute, no eval. htmx is told not to need any (the htmx-config <meta> in
# base.html: no injected indicator <style>, no eval). The admin of Django 5.2
# needs no inline script either. A violation shows in the browser console;
# tests/e2e/test_csp.py walks every page of the loop and fails on one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # data: for the empty favicon in base.html
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

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
# An upload is streamed to LOUPE_UPLOAD_DIR and imported by a worker (annotations/imports.py),
# so the request only stores the file. CSV is read a chunk at a time, so the cap bounds the disk,
# not the worker's memory (bench/import_speed.py --rows 4000000 states the peak for a 1 GB file);
# an upload is stopped as it arrives once it passes the cap (workflow_site/upload_limit.py).
IMPORT_MAX_BYTES = env_int("LOUPE_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
# JSON Lines, Parquet and Label Studio JSON are converted to CSV whole, in memory, so they have a
# cap of their own (a 200 MB JSON Lines file takes about 1 GB of a worker's memory to convert).
IMPORT_CONVERTED_MAX_BYTES = env_int("LOUPE_IMPORT_CONVERTED_MAX_BYTES", 200 * 1024 * 1024)
LOUPE_UPLOAD_DIR = Path(env_str("LOUPE_UPLOAD_DIR", str(VAR_DIR / "uploads")))
# A worker whose import stops sending heartbeats (LOUPE_HEARTBEAT_STALE_S) is presumed lost;
# the sweep queues the import again, at most this many attempts in all, then fails it.
LOUPE_IMPORT_MAX_ATTEMPTS = env_int("LOUPE_IMPORT_MAX_ATTEMPTS", 2)
# Rows per staging transaction (each holds SQLite's write lock for a fraction of a second).
LOUPE_IMPORT_STAGE_CHUNK_ROWS = env_int("LOUPE_IMPORT_STAGE_CHUNK_ROWS", 5000)
# Connections that write a refresh's prediction chunks at once on PostgreSQL (models_app/prediction_writers.py).
LOUPE_PREDICTION_WRITERS = env_int("LOUPE_PREDICTION_WRITERS", 2)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "workflow_site.upload_limit.UploadLimitHandler",  # first: it sees every chunk and stops at the cap
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

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
    "models_app.tasks.shadow_predictions_refresh": {"queue": "ml"},
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
    # Imports saved while the broker was down are sent; an import whose worker
    # stopped (stale heartbeat) is queued again or failed, its staged rows removed.
    "import-batches-sweep": {
        "task": "annotations.tasks.import_batches_sweep",
        "schedule": env_int("LOUPE_DISPATCH_EVERY_S", 60),
    },
    # Each dataset's counter rows (one per answer) folded into one per key (annotations/counters.py).
    "item-counts-fold": {
        "task": "annotations.tasks.item_counts_fold",
        "schedule": env_int("LOUPE_COUNTS_FOLD_EVERY_S", 300),
    },
    # Open items still showing an old (or no) prediction get the champion's.
    "predictions-refresh-sweep": {
        "task": "models_app.tasks.predictions_refresh_sweep",
        "schedule": env_int("LOUPE_REPREDICT_EVERY_S", 300),
    },
    # A signed Merkle checkpoint of the audit trail (skipped when nothing new happened since the last).
    "audit-checkpoint": {
        "task": "governance.tasks.audit_checkpoint_task",
        "schedule": env_int("LOUPE_AUDIT_CHECKPOINT_EVERY_S", 60 * 60),
    },
    # Audit verifications asked for while the broker was down are sent; one whose worker stopped is taken back.
    "audit-verification-sweep": {
        "task": "governance.tasks.audit_verification_runs_sweep",
        "schedule": env_int("LOUPE_DISPATCH_EVERY_S", 60),
    },
    # Retention (governance/retention.py): expired item data and audit payloads become tombstones.
    "retention-apply": {
        "task": "governance.tasks.retention_apply_task",
        "schedule": env_int("LOUPE_RETENTION_EVERY_S", 6 * 60 * 60),
    },
}
# Retention: days an item's data and an audit event's payload are kept, for datasets that set no period
# of their own. Unset: kept forever. A dataset on legal hold keeps everything whatever the period.
LOUPE_RETENTION_DAYS = env_optional_days("LOUPE_RETENTION_DAYS")
# Rows per retention transaction (each batch writes one retention.applied event).
LOUPE_RETENTION_BATCH = env_int("LOUPE_RETENTION_BATCH", 1000)
# The audit trail's checkpoint key (governance/checkpoint_signing.py): a raw 32-byte Ed25519
# private key, base64. Outside DEBUG it must be set (system check loupe.W003); in DEBUG one is
# generated once under var/. Keep it off the database server: a key the database holds would let
# whoever rewrites the trail sign a new checkpoint for it.
LOUPE_AUDIT_SIGNING_KEY = env_str("LOUPE_AUDIT_SIGNING_KEY")
# Public keys (base64, raw) of earlier signing keys, so checkpoints signed before a rotation still verify.
LOUPE_AUDIT_TRUSTED_KEYS = env_list("LOUPE_AUDIT_TRUSTED_KEYS", [])
# A queued run not picked up within this many seconds is sent to the broker again.
LOUPE_REDISPATCH_AFTER_S = env_int("LOUPE_REDISPATCH_AFTER_S", 120)
# A running training run touches its heartbeat at every stage and this often while it fits;
# the sweep treats a run whose heartbeat is older than LOUPE_HEARTBEAT_STALE_S as lost
# (worker killed) and queues it again, at most LOUPE_TRAINING_MAX_ATTEMPTS attempts in all.
LOUPE_HEARTBEAT_EVERY_S = env_int("LOUPE_HEARTBEAT_EVERY_S", 30)
LOUPE_HEARTBEAT_STALE_S = env_int("LOUPE_HEARTBEAT_STALE_S", 120)
LOUPE_TRAINING_MAX_ATTEMPTS = env_int("LOUPE_TRAINING_MAX_ATTEMPTS", 3)
# How long a reviewer holds an item before another reviewer may get it.
LOUPE_LEASE_SECONDS = env_int("LOUPE_LEASE_SECONDS", 10 * 60)
# An item a reviewer skipped can come back to that reviewer after this long (to others at once).
LOUPE_SKIP_RETURN_SECONDS = env_int("LOUPE_SKIP_RETURN_SECONDS", 60 * 60)
# A reviewer may undo their last answer, or revise an answer given blind once the prediction is
# revealed, for this long after giving it (a new review that supersedes it; never an edit).
LOUPE_REVISE_SECONDS = env_int("LOUPE_REVISE_SECONDS", 5 * 60)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF answers a request without credentials from the first
    # class's authenticate_header, so it gets 401 with `WWW-Authenticate: Token`
    # (session auth has no such header and would make it a 403). Session auth
    # still enforces CSRF for the browser. Tokens are hashed at rest and expire
    # (governance/api_auth.py); the wire format is DRF's (`Token <secret>`).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # PasswordIsOwn: 403 while the caller's password is one a site admin set.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "governance.api_auth.PasswordIsOwn",
    ],
    "DEFAULT_SCHEMA_CLASS": "workflow_site.api_schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "workflow_site.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loupe API",
    "DESCRIPTION": "Human-in-the-loop review of model predictions, with four-eyes promotion and an audit trail.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI at /api/docs/ from drf-spectacular-sidecar's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["rest_framework.permissions.IsAuthenticated"]
