"""Retention settings on the queue settings page: the period and the legal hold (annotations/retention.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotations.retention import MAX_RETENTION_DAYS, dataset_legal_hold_set, dataset_retention_set
from annotations.selectors import dataset_get_for_user
from annotations.workbench_views import settings_page_render
from workflow_site.access import Role


def _days(raw: str) -> int | None:
    """The form's period: empty for the site default, else a whole number of days (ValidationError naming it)."""
    raw = raw.strip()
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):  # isdigit alone accepts "²", which int() refuses
        raise ValidationError(
            f"Retention period: {raw[:40]!r} is not a whole number of days from 1 to {MAX_RETENTION_DAYS}"
            " (leave it empty for the site default)."
        )
    return int(raw)


@require_POST
@login_required
def retention_period_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Model admins set how long item data and audit payloads are kept (empty: the site default)."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    try:
        days = _days(request.POST.get("retention_days", ""))
        dataset_retention_set(dataset_id=dataset.pk, user=request.user, retention_days=days)
    except ValidationError as exc:
        return settings_page_render(
            request,
            dataset,
            side_errors={"retention": " ".join(exc.messages)},
            posted={"retention_days": request.POST.get("retention_days", "")},
            status=400,
        )
    else:
        messages.success(
            request,
            f"Retention period set to {days} days." if days else "Retention period set to the site default.",
        )
    return redirect("annotations:workbench_settings", dataset_id=dataset.pk)


@require_POST
@login_required
def legal_hold_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Model admins place or lift a legal hold (with a reason): while it holds, nothing of the dataset expires."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    hold = request.POST.get("legal_hold") == "place"
    try:
        dataset_legal_hold_set(
            dataset_id=dataset.pk, user=request.user, hold=hold, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        return settings_page_render(
            request,
            dataset,
            side_errors={"legal_hold": " ".join(exc.messages)},
            posted={"hold_reason": request.POST.get("reason", "")},
            status=400,
        )
    else:
        messages.success(
            request,
            "Legal hold placed: nothing of this dataset expires until it is lifted."
            if hold
            else "Legal hold lifted: the retention period applies again.",
        )
    return redirect("annotations:workbench_settings", dataset_id=dataset.pk)
