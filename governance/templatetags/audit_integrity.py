"""`{% audit_integrity %}`: the audit trail's integrity line on every auditor page (issue 10, point 1)."""

from __future__ import annotations

from typing import Any

from django import template

from governance.checkpoints import audit_integrity_status

register = template.Library()


@register.inclusion_tag("governance/includes/integrity_status.html")
def audit_integrity() -> dict[str, Any]:
    """The last checkpoint (size, when, signature) and the last verification: two indexed queries on any trail."""
    return {"status": audit_integrity_status()}
