"""`{% audit_integrity %}`: the audit trail's integrity line on every auditor page (issue 10, point 1)."""

from __future__ import annotations

from typing import Any

from django import template

from governance.checkpoints import audit_integrity_status

register = template.Library()


@register.inclusion_tag("governance/includes/integrity_status.html")
def audit_integrity(out_of_band: bool = False) -> dict[str, Any]:
    """The last checkpoint (size, when, signature) and the last verification: two indexed queries on any trail.

    `out_of_band`: rendered into an htmx response, to replace the line already on the page (hx-swap-oob).
    """
    return {"status": audit_integrity_status(), "out_of_band": out_of_band}
