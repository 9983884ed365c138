"""The id of the HTTP request (or Celery task) now running, stamped on audit events and read records.

Only the id is kept here, never the request or its user: whoever records an
event passes the actor explicitly.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

_request_id: ContextVar[str] = ContextVar("loupe_request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> Token[str]:
    return _request_id.set(value)


def reset_request_id(token: Token[str]) -> None:
    _request_id.reset(token)
