"""Logins, logouts and failed logins go to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction


def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    from governance.audit import audit_record

    with transaction.atomic():
        audit_record(actor=user, action="auth.login", obj=user, object_type="user")


def _on_logout(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is None:
        return
    from governance.audit import audit_record

    with transaction.atomic():
        audit_record(actor=user, action="auth.logout", obj=user, object_type="user")


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    from governance.audit import audit_record

    # Django scrubs the password from `credentials`; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        audit_record(
            actor=None,
            actor_username=username,
            action="auth.login_failed",
            object_type="user",
            after={"username": username},
            reason="wrong username or password",
        )


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="loupe_audit_login")
    user_logged_out.connect(_on_logout, dispatch_uid="loupe_audit_logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="loupe_audit_login_failed")
