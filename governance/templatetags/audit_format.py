"""Template filters for the audit trail's pages."""

from __future__ import annotations

from django import template

from governance.audit_display import AuditDiff, ShownValue, audit_diff, shown_value
from governance.models import AuditEvent
from workflow_site.invisible_chars import reveal as reveal_plain

register = template.Library()


@register.filter
def audit_changes(event: AuditEvent) -> AuditDiff:
    """The event's before/after as a compact diff (governance/audit_display.py)."""
    return audit_diff(event.before, event.after)


@register.filter
def shortened(value: object, limit: int = 80) -> ShownValue:
    """A recorded value (a reason) cut to `limit` characters for a row, its whole text kept beside it."""
    return shown_value("" if value is None else value, limit=int(limit))


@register.filter
def breakable(action: str) -> str:
    """An action name that may wrap after each dot (`model_version.<wbr>champion_changed`), not mid-word."""
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    return mark_safe(".<wbr>".join(escape(part) for part in reveal_plain(str(action)).split(".")))  # noqa: S308 - escaped
