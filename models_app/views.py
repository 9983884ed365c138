"""Model pages: versions, training runs, the retraining policy."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations.selectors import dataset_get_for_user
from models_app.evaluation_report import evaluation_report
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.selectors import champion_comparison, models_overview_get_for_user, run_get_for_user
from models_app.services import PolicyChoice, retraining_policy_update, training_run_cancel, training_run_request
from models_app.shadow import shadow_report
from workflow_site.access import Role, has_role


@require_GET
@login_required
def models_overview(request: HttpRequest, dataset_id: int) -> HttpResponse:
    return _models_overview_page(request, dataset_id)


def _models_overview_page(
    request: HttpRequest, dataset_id: int, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    from models_app.ml.algorithms.catalogue import catalogue

    overview = models_overview_get_for_user(user=request.user, dataset_id=dataset_id)
    policy = overview.policy
    context = {
        "dataset": overview.dataset,
        "overview": overview,
        "families": list(catalogue().values()),
        "modes": RetrainingPolicy.Mode.choices,
        "shadow_report": shadow_report(model_version=overview.shadow) if overview.shadow else None,
        "errors": errors or {},
        # What the form shows: what was typed when it was refused, else the saved policy.
        "form": request.POST if errors else _policy_form_values(policy),
    }
    return render(request, "models_app/models_overview.html", context, status=status)


def _policy_form_values(policy: RetrainingPolicy | None) -> dict[str, Any]:
    policy = policy or RetrainingPolicy()
    return {
        "enabled": "on" if policy.enabled else "",
        "new_gold_labels": policy.new_gold_labels,
        "schedule_hours": policy.schedule_hours or "",
        "algorithm": policy.algorithm,
        "hyperparameters": json.dumps(policy.hyperparameters, indent=1) if policy.hyperparameters else "",
        "min_class_examples": policy.min_class_examples,
        "mode": policy.mode,
        "replay_fraction": policy.replay_fraction,
    }


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
    # Another run: a worker may already have claimed this one by the time the message is written.
    running = TrainingRun.objects.filter(dataset=dataset, status=TrainingRun.Status.RUNNING).exclude(pk=run.pk).first()
    if run.triggers.count() > 1:
        messages.success(request, f"Training run {run.pk} was already queued: your request is folded into it.")
    elif running is not None:
        messages.success(request, f"Training run {run.pk} is queued; it starts when run {running.pk} has ended.")
    else:
        messages.success(request, f"Training run {run.pk} is queued.")
    return redirect("models_app:run_detail", run_id=run.pk)


@require_POST
@login_required
def policy_update(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    try:
        current = RetrainingPolicy.objects.filter(dataset=dataset).first() or RetrainingPolicy(dataset=dataset)
        choice = _policy_choice(request.POST, current)
        retraining_policy_update(dataset=dataset, user=request.user, choice=choice)
    except ValidationError as exc:
        return _models_overview_page(request, dataset.pk, errors=exc.message_dict, status=400)
    messages.success(request, "Retraining policy saved.")
    return redirect("models_app:overview", dataset_id=dataset.pk)


def _policy_choice(data: Any, current: RetrainingPolicy) -> PolicyChoice:
    """The posted form as a PolicyChoice; a value that is not even a number is refused here, by field.
    A field the form did not send at all keeps the policy's current value (an older form, a script)."""
    errors: dict[str, str] = {}

    def number(name: str, kind: type, *, optional: bool = False) -> Any:
        if name not in data:
            return getattr(current, name)
        raw = (data.get(name) or "").strip()
        if optional and not raw:
            return None
        try:
            return kind(raw)
        except ValueError:
            errors[name] = f"“{raw}” is not a {'whole ' if kind is int else ''}number."
            return None

    hyperparameters: Any = {}
    raw_params = (data.get("hyperparameters") or "").strip()
    if "hyperparameters" not in data:
        hyperparameters = current.hyperparameters
    elif raw_params:
        try:
            hyperparameters = json.loads(raw_params)
        except json.JSONDecodeError as exc:
            errors["hyperparameters"] = f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
        else:
            if not isinstance(hyperparameters, dict):
                errors["hyperparameters"] = 'Write the hyperparameters as a JSON object, e.g. {"C": 0.5}.'
    choice = {
        "enabled": data.get("enabled") == "on",
        "new_gold_labels": number("new_gold_labels", int),
        "schedule_hours": number("schedule_hours", int, optional=True),
        "algorithm": data.get("algorithm") or current.algorithm,
        "hyperparameters": hyperparameters if isinstance(hyperparameters, dict) else {},
        "min_class_examples": number("min_class_examples", int),
        "mode": data.get("mode") or current.mode,
        "replay_fraction": number("replay_fraction", float),
    }
    if errors:
        raise ValidationError(errors)
    return PolicyChoice(**choice)


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
        "report": evaluation_report(version) if version else None,
        "triggers": list(run.triggers.select_related("requested_by")),
        "can_cancel": run.is_active and not run.is_cancelling and has_role(request.user, Role.MODEL_ADMIN),
    }
    template = "models_app/run_detail.html#status" if request.htmx else "models_app/run_detail.html"
    return render(request, template, context)
