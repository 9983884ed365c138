"""Model pages: versions, training runs, the retraining policy."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations.selectors import dataset_get_for_user
from models_app.models import TrainingRun
from models_app.selectors import champion_comparison, models_overview_get_for_user, run_get_for_user
from models_app.services import retraining_policy_update, training_run_cancel, training_run_request
from workflow_site.access import Role, has_role


@require_GET
@login_required
def models_overview(request: HttpRequest, dataset_id: int) -> HttpResponse:
    overview = models_overview_get_for_user(user=request.user, dataset_id=dataset_id)
    return render(request, "models_app/models_overview.html", {"dataset": overview.dataset, "overview": overview})


@require_POST
@login_required
def training_start(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    try:
        run = training_run_request(
            dataset=dataset,
            trigger=TrainingRun.Trigger.MANUAL,
            requested_by=request.user,
            reason=request.POST.get("reason", "").strip() or "Started by hand",
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("models_app:overview", dataset_id=dataset.pk)
    messages.success(request, f"Training run {run.pk} is queued.")
    return redirect("models_app:run_detail", run_id=run.pk)


@require_POST
@login_required
def policy_update(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    raw = request.POST.get("new_gold_labels", "")
    try:
        threshold = int(raw)
        retraining_policy_update(
            dataset=dataset, user=request.user, enabled=request.POST.get("enabled") == "on", new_gold_labels=threshold
        )
    except ValueError:
        messages.error(request, f"“{raw}” is not a whole number of gold labels.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Retraining policy saved.")
    return redirect("models_app:overview", dataset_id=dataset.pk)


@require_POST
@login_required
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, pk=run_id, roles=(Role.MODEL_ADMIN,))
    try:
        cancelled = training_run_cancel(run_id=run.pk, user=request.user, reason=request.POST.get("reason", "").strip())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"Training run {run.pk} cancelled."
            if cancelled.status == TrainingRun.Status.CANCELLED
            else f"Training run {run.pk} will stop at its next step; nothing it trained is kept.",
        )
    return redirect("models_app:run_detail", run_id=run.pk)


@require_GET
@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, pk=run_id)
    version = getattr(run, "model_version", None) if run.succeeded else None
    context = {
        "run": run,
        "dataset": run.dataset,
        "version": version,
        "comparison": champion_comparison(version) if version else None,
        "triggers": list(run.triggers.select_related("requested_by")),
        "can_cancel": run.is_active and not run.is_cancelling and has_role(request.user, Role.MODEL_ADMIN),
    }
    template = "models_app/run_detail.html#status" if request.htmx else "models_app/run_detail.html"
    return render(request, template, context)
