"""Small typed readers for environment variables.

Settings come only from the environment (DESIGN.md, "Running it"). Each helper
fails loudly on a value it cannot parse, naming the variable, rather than
silently falling back to a default.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from exc


def env_optional_days(name: str) -> int | None:
    """A number of days, at least 1; unset or empty: None (no limit)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        days = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number of days (leave it empty for none).") from exc
    if days < 1:
        raise ImproperlyConfigured(f"{name}={raw!r}: a number of days must be at least 1 (leave it empty for none).")
    return days


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]
