from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    """0.8731 → '87%' (or '87.3%' with digits=1); anything but a number → '—'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value * 100:.{int(digits)}f}%"


@register.filter
def signed(value: float | None, digits: int = 3) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:+.{int(digits)}f}"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def as_json(value: object) -> str:
    """Compact JSON for display (the template autoescapes it)."""
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
