"""Logins, logouts and login lockouts go to the audit trail; a sign-in notes a temporary password.

A failed login is not an audit event. django-axes counts failures in its own
tables (AccessAttempt per username and IP, AccessFailureLog per try) and locks
the pair out at AXES_FAILURE_LIMIT; only the lockout reaches the hash chain, as
one `auth.locked_out` event. So a flood of anonymous wrong passwords neither
grows the chain nor queues on its head row.

axes sends `user_locked_out` on the failure that reaches the limit and again on
every try during the lockout (each one restarts the cool-off). The receiver
writes an event only when none was written for the same username and IP within
the last cool-off period: one per lockout, and a lockout kept alive by an
attacker who keeps trying shows up again once per cool-off period, not once per
try. The "already written?" read is made before any lock, so the flood itself
takes no lock on the chain head; it is made again under the head lock, so two
tries that cross the limit at the same moment still write one event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.utils import timezone


def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    from governance.audit import audit_record
    from governance.credentials import session_flag_on_login

    with transaction.atomic():
        audit_record(actor=user, action="auth.login", obj=user, object_type="user")
    # A password a site admin set must be changed before anything else (governance/middleware.py).
    session_flag_on_login(request=request, user=user)


def _on_logout(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is None:
        return
    from governance.audit import audit_record

    with transaction.atomic():
        audit_record(actor=user, action="auth.logout", obj=user, object_type="user")


def _on_locked_out(sender: Any, request: Any, username: str | None, ip_address: str | None, **_: Any) -> None:
    from governance.audit import audit_record
    from governance.models import AuditChainHead, AuditEvent

    username = str(username or "")[:150]
    ip_address = str(ip_address or "")
    # None would be a lockout until an admin lifts it; settings refuse that, a day stands in.
    cool_off = get_cool_off(request) or timedelta(days=1)
    already = AuditEvent.objects.filter(
        action="auth.locked_out",
        actor_username=username,
        after__ip_address=ip_address,
        created_at__gte=timezone.now() - cool_off,
    )
    if already.exists():
        return
    with transaction.atomic():
        # The lock audit_record would take anyway, taken before the second look.
        AuditChainHead.objects.select_for_update().get_or_create(singleton=True)
        if already.exists():
            return
        # The account, when the username names one: the lockout is then in its history.
        user = get_user_model().objects.filter(username=username).first()
        failures = getattr(request, "axes_failures_since_start", None)
        minutes = int(cool_off.total_seconds() // 60)
        audit_record(
            actor=None,
            actor_username=username,
            action="auth.locked_out",
            obj=user,
            object_type="user",
            after={
                "username": username,
                "ip_address": ip_address,
                "failures": failures,
                "cool_off_minutes": minutes,
            },
            reason=f"too many failed sign-ins from {ip_address or 'an unknown address'}; "
            f"sign-in refused for {minutes} minutes",
        )


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="loupe_audit_login")
    user_logged_out.connect(_on_logout, dispatch_uid="loupe_audit_logout")
    user_locked_out.connect(_on_locked_out, dispatch_uid="loupe_audit_locked_out")
