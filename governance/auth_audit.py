"""Logins, logouts and failed logins go to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from governance.request_context import current_user


def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    from governance.services import audit_record

    with transaction.atomic():
        audit_record(actor=user, action="auth.login", obj=user, object_type="user")


def _on_logout(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is None:
        return
    from governance.services import audit_record

    with transaction.atomic():
        audit_record(actor=user, action="auth.logout", obj=user, object_type="user")


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    from governance.services import audit_record

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


def _on_user_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if not created:
        return  # last_login and profile edits are not role changes
    from governance.services import audit_record

    with transaction.atomic():
        audit_record(
            actor=current_user(),
            action="user.created",
            obj=instance,
            object_type="user",
            after={
                "username": instance.get_username(),
                "is_staff": instance.is_staff,
                "is_superuser": instance.is_superuser,
            },
        )


def _on_roles_changed(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **_: Any) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Group

    from governance.services import audit_record

    groups = sorted(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    with transaction.atomic():
        audit_record(
            actor=current_user(),
            action="user.roles_changed",
            obj=instance,
            object_type="user",
            after={
                "change": action.removeprefix("post_"),
                "roles": groups,
                "now": sorted(instance.groups.values_list("name", flat=True)),
            },
        )


def connect_role_changes() -> None:
    """Who holds which role is governance: record user creation and every group change."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_save

    user_model = get_user_model()
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="loupe_audit_user_created")
    m2m_changed.connect(_on_roles_changed, sender=user_model.groups.through, dispatch_uid="loupe_audit_roles")
