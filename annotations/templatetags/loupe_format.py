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
def points(value: float | None, digits: int = 1) -> str:
    """A difference of two fractions in percentage points: 0.0061 → '+0.6 points'; not a number → '—'."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value * 100:+.{int(digits)}f} points"


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


@register.filter
def plain_value(value: object) -> str:
    """A structured value in words for a table cell (the template escapes it): numbers rounded to 3 decimals,
    lists joined with commas, mappings as "key: value; ...", nothing as —. For the envelope's clauses."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain_value(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain_value(v)}" for k, v in value.items()) or "—"
    return str(value)


@register.filter
def reveal(value: object) -> str:
    """Show an identifier or user value with invisible characters made visible (defect 20).

    The value is escaped; each bidi control, zero-width or other hidden
    character becomes a visible ⟨U+XXXX⟩ marker (named in its title), and the
    whole is isolated in <bdi> so it cannot reorder the text around it.
    """
    from django.utils.html import escape, format_html
    from django.utils.safestring import mark_safe

    from workflow_site.invisible_chars import describe, marker, split_hidden

    text = "" if value is None else str(value)
    parts = [
        format_html('<span class="hidden-char" title="{}">{}</span>', describe(run), marker(run))
        if hidden
        else escape(run)
        for run, hidden in split_hidden(text)
    ]
    return mark_safe(f"<bdi>{''.join(parts)}</bdi>")  # noqa: S308 - every part is escaped above


@register.filter
def reveal_text(value: object) -> str:
    """`reveal` for places that take text, not markup (<title>, <option>, attributes): the
    same ⟨U+XXXX⟩ markers, left for autoescaping to escape."""
    from workflow_site.invisible_chars import reveal as reveal_plain

    return reveal_plain("" if value is None else str(value))
