"""System checks for deployment mistakes, with stable ids (run by `manage.py check` and at start-up)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

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

    A database check: it runs only when asked for a database (`manage.py check
    --database default`, and `migrate`), never in the plain `check` that CI runs.
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
