"""The id of the HTTP request (or Celery task) now running, for audit events."""

from __future__ import annotations

from contextvars import ContextVar, Token

_request_id: ContextVar[str] = ContextVar("loupe_request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> Token[str]:
    return _request_id.set(value)


def reset_request_id(token: Token[str]) -> None:
    _request_id.reset(token)


_request: ContextVar[object | None] = ContextVar("loupe_request", default=None)


def set_current_request(request: object | None) -> Token[object | None]:
    return _request.set(request)


def reset_current_request(token: Token[object | None]) -> None:
    _request.reset(token)


def current_user() -> object | None:
    """The signed-in user of the HTTP request now running (for signals that get no request)."""
    request = _request.get()
    user = getattr(request, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None
