"""API authentication by hashed token, and the 403 for users whose password somebody else set.

`ApiTokenAuthentication` keeps DRF's wire format (`Authorization: Token <secret>`,
`WWW-Authenticate: Token` on a 401) and drf-spectacular's `tokenAuth` scheme (it
documents subclasses of DRF's TokenAuthentication), so clients see no change;
only what is stored differs (governance/credentials.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from governance.credentials import API_REFUSED, SESSION_MUST_CHANGE, api_token_digest, api_token_touch
from governance.models import ApiToken, PasswordState
from workflow_site import sql_rows
from workflow_site.access import role_names_sql, roles_remember
from workflow_site.prepared_sql import prepared_cursor


class ApiTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, ApiToken]:
        token = _token_with_user(api_token_digest(key))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked; create a new one on your API tokens page.")
        if token.expires_at <= timezone.now():
            when = f"{token.expires_at:%Y-%m-%d %H:%M} UTC"
            raise exceptions.AuthenticationFailed(
                f"This token expired on {when}; create a new one on your API tokens page."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        api_token_touch(token)
        return token.user, token


def _token_with_user(digest: str) -> ApiToken | None:
    """The token with this digest, its user and the user's password state attached (None when unknown).

    `ApiToken.objects.select_related("user", "user__loupe_password_state")` as one
    fixed statement, with the user's roles read in it too: every API call runs
    it, and building it through the ORM costs more CPU than the database's
    answer (workflow_site/sql_rows.py).
    """
    user_model = get_user_model()
    state_fk = PasswordState._meta.get_field("user").column
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {sql_rows.columns(ApiToken, 't')}, {sql_rows.columns(user_model, 'u')},"
            f" {sql_rows.columns(PasswordState, 'ps')}, {role_names_sql('u.id')} FROM {sql_rows.table(ApiToken)} t"
            f" JOIN {sql_rows.table(user_model)} u ON u.id = t.user_id"
            f" LEFT JOIN {sql_rows.table(PasswordState)} ps ON ps.{state_fk} = u.id"
            " WHERE t.digest = %s",
            [digest],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    token_values, user_values, state_values, (role_names,) = sql_rows.split(row, ApiToken, user_model, PasswordState)
    token, user = sql_rows.build(ApiToken, token_values), sql_rows.build(user_model, user_values)
    roles_remember(user, role_names)
    # What select_related leaves behind: the user on the token, the state (or its absence) on the user.
    token.user = user
    user_model._meta.get_field("loupe_password_state").set_cached_value(
        user, sql_rows.build_optional(PasswordState, state_values)
    )
    return token


class PasswordIsOwn(permissions.BasePermission):
    """Refuses (403) API calls by a user whose password a site admin set, until they choose their own."""

    message = API_REFUSED

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True  # IsAuthenticated answers for anonymous calls (401)
        if isinstance(request.auth, ApiToken):
            try:
                return not user.loupe_password_state.must_change  # fetched with the token: no query
            except PasswordState.DoesNotExist:
                return True
        session = getattr(request._request, "session", None)
        return not (session is not None and session.get(SESSION_MUST_CHANGE))
