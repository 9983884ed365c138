"""The page twin of `LabelIssuesReopenApi`: a model admin starts the re-review of the likeliest wrong gold labels.

Two steps on one URL, so nothing is reopened by a stray click and the page works
without JavaScript: the Models page posts the limit; the answer is a
confirmation page saying what the job will do (how many gold labels it scores,
how many it may reopen, how the queue will serve them); that page posts again
with `confirm`, which queues the job (models_app/label_issues.py, run by a
worker; its one audit event lists what it reopened) and goes back to the Models
page with a message. The same role check and the same refusals as the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotations.models import QueueStrategy
from annotations.selectors import dataset_get_for_user
from models_app.label_issues import MAX_LIMIT, label_issues_check, label_issues_dispatch, limit_check
from workflow_site.access import Role

TEMPLATE = "models_app/label_issues_confirm.html"


def _limit(raw: str) -> int:
    """The posted limit as a checked int; ValidationError naming the field, with what was typed."""
    try:
        limit = int(raw.strip())
    except ValueError:
        raise ValidationError(
            {"limit": f"“{raw.strip()}” is not a whole number: give how many items to reopen, 1 to {MAX_LIMIT:,}."}
        ) from None
    return limit_check(limit)


@require_POST
@login_required
def label_issues_reopen_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """POST limit: the confirmation page. POST limit + confirm: queue the job, back to the Models page."""
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    raw = request.POST.get("limit", "")
    context: dict[str, Any] = {
        "dataset": dataset,
        "limit": raw,
        "max_limit": MAX_LIMIT,
        "label_issue_strategy": dataset.queue_strategy == QueueStrategy.LABEL_ISSUE,
        "errors": {},
    }
    try:
        limit = _limit(raw)
        to_score = label_issues_check(dataset=dataset)
    except ValidationError as exc:
        # The limit's error names its field; the labels' (too few to score, no usable feature) names none.
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        context["errors"] = {field: " ".join(errors) for field, errors in fields.items()}
        return render(request, TEMPLATE, context, status=400)
    context.update(limit=limit, to_score=to_score)
    if not request.POST.get("confirm"):
        return render(request, TEMPLATE, context)
    if not label_issues_dispatch(dataset_id=dataset.pk, user_id=request.user.pk, limit=limit):
        context["errors"] = {
            "__all__": "The job queue cannot be reached right now; nothing was queued. Try again shortly."
        }
        return render(request, TEMPLATE, context, status=503)
    messages.success(
        request,
        f"The label-issue check is queued: a worker scores the {to_score:,} gold labels and sends up to {limit:,} "
        "of the likeliest wrong back to the review queue. What it reopened is recorded in the audit trail "
        "(label_issues.reopened).",
    )
    return redirect("models_app:overview", dataset_id=dataset.pk)
