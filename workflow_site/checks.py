"""System checks for deployment mistakes, with stable ids (run by `manage.py check` and at start-up).

Database checks at start-up. Django runs a check tagged `database` only when a
command asks for a database (`check --database default`, `migrate`): the plain
`check` and runserver's start-up checks must work with no database reachable,
and `makemigrations` must not need one. So the privileged-role warning
(loupe.W004, W005) would be read only by someone who thinks to ask. The
processes that serve (gunicorn through wsgi.py or asgi.py, the Celery worker
and beat through workflow_site/celery.py) call
`database_checks_at_first_connection()` as they start: it only connects a
`connection_created` receiver, so nothing touches the database at import time
and a database that is down at start-up delays the check rather than failing
the start. The process's first connection to the default database then runs
the database-tagged checks once (one query on PostgreSQL) and logs each
finding as a WARNING naming its id and hint; the receiver disconnects itself
first, so a process logs once (every gunicorn worker and pool process is a
process: a few identical lines per start). A check silenced in
SILENCED_SYSTEM_CHECKS stays silent, and a failing check is logged, never
raised into the request that happened to connect first. `manage.py` commands
(migrate, makemigrations, the tests) never register it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register, run_checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)
_AT_FIRST_CONNECTION = "loupe_database_checks_at_first_connection"

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@register()
def artifact_root_writable(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    root = Path(settings.ARTIFACT_ROOT)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [Error(f"Cannot create ARTIFACT_ROOT {root}: {exc}.", hint="Set LOUPE_ARTIFACT_DIR.", id="loupe.E001")]
    if not os.access(root, os.W_OK):
        return [Error(f"ARTIFACT_ROOT {root} is not writable.", hint="Set LOUPE_ARTIFACT_DIR.", id="loupe.E001")]
    return []


@register(deploy=False)
def cookies_over_plain_http(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    public = [host for host in settings.ALLOWED_HOSTS if host not in LOCAL_HOSTS]
    if not settings.DEBUG and not settings.HTTPS and public:
        return [
            Warning(
                f"HTTPS is off but Loupe serves {', '.join(public)}: session and CSRF cookies would travel in clear.",
                hint="Serve over HTTPS and leave HTTPS unset (it defaults to on).",
                id="loupe.W001",
            )
        ]
    return []


def _database_engine() -> str:
    return str(settings.DATABASES["default"]["ENGINE"])


@register()
def filesystem_broker_with_shared_database(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    engine = _database_engine()
    if settings.CELERY_BROKER_URL.startswith("filesystem://") and "postgresql" in engine:
        return [
            Warning(
                "PostgreSQL with the filesystem broker: workers on other machines will never see the queue.",
                hint="Set CELERY_BROKER_URL=redis://… alongside DATABASE_URL.",
                id="loupe.W002",
            )
        ]
    return []


@register()
def audit_signing_key_missing(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if not settings.DEBUG and not settings.LOUPE_AUDIT_SIGNING_KEY:
        return [
            Warning(
                "LOUPE_AUDIT_SIGNING_KEY is not set: no audit checkpoint can be signed, so a rewritten audit"
                " trail (events edited and every later hash recomputed) would go undetected.",
                hint="Set LOUPE_AUDIT_SIGNING_KEY to a base64 raw Ed25519 private key"
                " (manage.py audit_checkpoint --new-key prints one), kept off the database server.",
                id="loupe.W003",
            )
        ]
    return []


@register(Tags.database)
def database_role_privileged(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Warning]:
    """The app's own database role must not be able to switch the append-only triggers off (README).

    A database check: it runs when asked for a database (`manage.py check
    --database default`, and `migrate`), never in the plain `check` that CI runs,
    and in every serving process at its first connection (module docstring).
    """
    if not databases or "default" not in databases or connections["default"].vendor != "postgresql":
        return []
    from workflow_site.db_roles import AUDIT_TABLE, connection_role

    try:
        role = connection_role(connections["default"])
    except DatabaseError:
        return []  # unreachable: Django's own checks and the first query say so
    hint = (
        "Connect the web app, workers and beat as an application role made by `manage.py db_roles`;"
        " keep the owner's URL (LOUPE_MIGRATE_DATABASE_URL) for migrate. Expected while migrating."
    )
    if role.superuser:
        return [
            Warning(
                f"The app connects to PostgreSQL as {role.name}, a superuser: it can disable the audit trail's"
                " append-only triggers and truncate it.",
                hint=hint,
                id="loupe.W004",
            )
        ]
    if role.audit_table_owner:
        return [
            Warning(
                f"The app connects to PostgreSQL as {role.name}, the owner of {AUDIT_TABLE} (or a member of the"
                " owner's role): it can disable the audit trail's append-only triggers.",
                hint=hint,
                id="loupe.W005",
            )
        ]
    return []


def database_checks_at_first_connection() -> None:
    """Run the database checks when this process first connects to the default database (module docstring).

    For the serving processes' entry points only (wsgi.py, asgi.py, the Celery worker and beat). Touches no
    database itself; calling it again changes nothing (one receiver per process, by its dispatch uid)."""
    connection_created.connect(_check_at_first_connection, dispatch_uid=_AT_FIRST_CONNECTION)


def _check_at_first_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.alias != DEFAULT_DB_ALIAS:
        return
    # Disconnect first: once per process, and of two threads connecting at once only one gets True here.
    if not connection_created.disconnect(dispatch_uid=_AT_FIRST_CONNECTION):
        return
    try:
        found = run_checks(tags=[Tags.database], databases=[connection.alias])
    except Exception:  # a check that fails must not fail the request or task that connected first
        logger.exception("The database system checks could not run at start-up.")
        return
    for message in found:
        if message.id in settings.SILENCED_SYSTEM_CHECKS:
            continue
        level = logging.ERROR if message.is_serious() else logging.WARNING
        logger.log(level, "%s: %s%s", message.id, message.msg, f" Hint: {message.hint}" if message.hint else "")
