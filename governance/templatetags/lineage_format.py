"""Template filters for the lineage page: a fact's name and value as people read them."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from annotations.templatetags.loupe_format import reveal

register = template.Library()


@register.filter
def fact_name(key: str) -> str:
    """selection_strategy → Selection strategy; sha256 keeps its case."""
    words = str(key).replace("_", " ")
    return words[:1].upper() + words[1:]


@register.filter
def fact_value(value: object) -> str:
    """A fact for a table cell: times in the site's zone, numbers rounded, nothing as —, text escaped (reveal)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if timezone.is_aware(value) else str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return reveal(value)
