"""Credentials: passwords somebody else set, and API tokens stored as hashes.

Temporary passwords (issue 6, defect 4). A password a site admin sets for
someone else (the admin's password form, or its add-user form) is known to two
people, so it cannot stand behind an electronic signature. Until its holder
chooses their own:

- every page sends them to the password-change page (`PasswordChangeRequired
  Middleware`, via a session flag set at sign-in: no query per request);
- the API answers 403 (`PasswordIsOwn`, a DRF permission);
- signing is refused (`signing_refuse_if_password_temporary`, called by
  promotion_decide).

Changing one's own password clears the state and writes `user.password_changed`
(actor: the user) in the same transaction. An admin setting their own password
through the admin's password form is choosing their own: not temporary.

Not covered, on purpose: Django's `changepassword` management command (and the
shell). Whoever runs them has the server, its database and the audit chain's
files already; no row we write could bind them. It is the break-glass path for
an operator (a locked-out last superuser); its password is not marked temporary.
The demo seed (seed_demo) prints its passwords for a demo and does not mark them.

API tokens (defect 5). A token is `loupe_` plus 256 random bits (URL-safe
base64). Only its sha256 is stored (`ApiToken.digest`): a random secret of that
size needs no slow, salted hash, and a digest can be looked up by a unique index
in one query. The secret is shown once, on the page that created it. Every
token expires (default LOUPE_API_TOKEN_DEFAULT_DAYS, at most
LOUPE_API_TOKEN_MAX_DAYS); revoked and expired tokens stay as rows, refused with
401 and a reason. Creation and revocation are audited in their transaction with
the token's prefix, never the token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from governance.audit import audit_record
from governance.models import ApiToken, PasswordState

# Session key: set at sign-in while the password is temporary, dropped when changed.
SESSION_MUST_CHANGE = "loupe_password_must_change"

SIGNING_REFUSED = "Your password was set by a site admin; choose your own before you sign."
API_REFUSED = (
    "Your password was set by a site admin: sign in to Loupe and choose your own password before using the API."
)


# --- Temporary passwords ----------------------------------------------------


def password_is_temporary(*, user: AbstractBaseUser) -> bool:
    return PasswordState.objects.filter(user_id=user.pk, must_change=True).exists()


def password_mark_set_by_admin(*, user: AbstractBaseUser, set_by: AbstractBaseUser) -> None:
    """Record that `set_by` set `user`'s password: temporary, unless `set_by` is `user`.

    Precondition: runs inside the transaction that saved the password, whose
    audit event (the admin's `user.password_changed` or `user.created`) reads
    this state back, so the event says whether the password is temporary.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("password_mark_set_by_admin must run inside the transaction that set the password.")
    now = timezone.now()
    if set_by.pk == user.pk:
        PasswordState.objects.update_or_create(user_id=user.pk, defaults={"must_change": False, "changed_at": now})
        return
    PasswordState.objects.update_or_create(
        user_id=user.pk, defaults={"must_change": True, "set_by_id": set_by.pk, "set_at": now}
    )


def password_change_own(*, user: AbstractBaseUser, new_password: str) -> None:
    """Set `user`'s password to one they chose, clear any temporary state, audit it.

    Precondition: `new_password` passed Django's validators and the user proved
    the old one (PasswordChangeForm does both).
    """
    with transaction.atomic():
        was_temporary = (
            PasswordState.objects.select_for_update(no_key=True).filter(user_id=user.pk, must_change=True).exists()
        )
        user.set_password(new_password)
        user.save(update_fields=["password"])
        PasswordState.objects.update_or_create(
            user_id=user.pk, defaults={"must_change": False, "changed_at": timezone.now()}
        )
        audit_record(
            actor=user,
            action="user.password_changed",
            obj=user,
            object_type="user",
            before={"username": user.get_username(), "password_temporary": was_temporary},
            after={"username": user.get_username(), "password": "changed", "password_temporary": False},
            reason="chose their own password",
        )


def signing_refuse_if_password_temporary(user: AbstractBaseUser) -> None:
    """Raises PermissionDenied while `user`'s password is one somebody else set."""
    if password_is_temporary(user=user):
        raise PermissionDenied(SIGNING_REFUSED)


def session_flag_on_login(*, request: HttpRequest | None, user: AbstractBaseUser) -> None:
    """At sign-in, remember in the session whether the password must be changed first."""
    session = getattr(request, "session", None)
    if session is None:
        return
    if password_is_temporary(user=user):
        session[SESSION_MUST_CHANGE] = True
    else:
        session.pop(SESSION_MUST_CHANGE, None)


# --- API tokens -------------------------------------------------------------

TOKEN_PREFIX = "loupe_"
# How much of a token is shown and stored to tell tokens apart: the marker and 6 random characters.
SHOWN_CHARS = len(TOKEN_PREFIX) + 6
LAST_USED_EVERY = timedelta(minutes=1)


def api_token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_lifetime_bounds() -> tuple[int, int]:
    """(default, maximum) lifetime in days."""
    return settings.LOUPE_API_TOKEN_DEFAULT_DAYS, settings.LOUPE_API_TOKEN_MAX_DAYS


def api_token_create(*, user: AbstractBaseUser, name: str, days: int) -> tuple[ApiToken, str]:
    """Issue a token to `user` (for themselves only); returns the row and the secret, which is never stored.

    Raises ValidationError, creating nothing, for an empty or too long name or a
    lifetime outside 1..LOUPE_API_TOKEN_MAX_DAYS days.
    """
    name = name.strip()
    _, max_days = api_token_lifetime_bounds()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the token a name that says what it is for."
    elif len(name) > ApiToken._meta.get_field("name").max_length:
        errors["name"] = f"The name is too long: at most {ApiToken._meta.get_field('name').max_length} characters."
    if not 1 <= days <= max_days:
        errors["days"] = f"A token lives 1 to {max_days} days; {days} is outside that."
    if errors:
        raise ValidationError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=secret[:SHOWN_CHARS],
            digest=api_token_digest(secret),
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(
            actor=user,
            action="api_token.created",
            obj=token,
            object_type="api_token",
            after=_token_audit_state(token),
            reason=f"API token created for {days} days",
        )
    return token, secret


def api_token_revoke(*, token_id: int, by: AbstractBaseUser) -> ApiToken:
    """Revoke a token (its owner, or a site admin through the admin). Raises ValidationError if already revoked."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update(no_key=True, of=("self",)).select_related("user").get(pk=token_id)
        if token.revoked_at is not None:
            raise ValidationError(f"Token {token.prefix}… was already revoked.")
        before = _token_audit_state(token)
        token.revoked_at = timezone.now()
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=by,
            action="api_token.revoked",
            obj=token,
            object_type="api_token",
            before=before,
            after=_token_audit_state(token),
            reason="revoked by its owner" if by.pk == token.user_id else "revoked by a site admin",
        )
    return token


def api_tokens_for_user(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first (the account page)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at")


def api_token_get_for_user(*, user: AbstractBaseUser, pk: int) -> ApiToken:
    """One of the user's own tokens; anyone else's is a 403, a missing one too (ids are not probed)."""
    token = ApiToken.objects.filter(pk=pk).first()
    if token is None or token.user_id != user.pk:
        raise PermissionDenied("That is not one of your API tokens.")
    return token


def api_token_touch(token: ApiToken) -> None:
    """Record use, at most once a minute per token (a conditional UPDATE, so a burst writes once)."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at).update(last_used_at=now)
    token.last_used_at = now


def _token_audit_state(token: ApiToken) -> dict[str, Any]:
    # The prefix names the token; the secret and its digest never reach the trail.
    return {
        "owner": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
        "revoked": token.revoked_at is not None,
    }
