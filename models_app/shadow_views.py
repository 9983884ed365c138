"""Shadow mode on the models page: start or stop a version's shadow; its report is on the models page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from models_app.selectors import model_version_get_for_user
from models_app.shadow import shadow_start, shadow_stop
from workflow_site.access import Role


@require_POST
@login_required
def shadow_change(request: HttpRequest, model_version_id: int) -> HttpResponse:
    version = model_version_get_for_user(user=request.user, pk=model_version_id, roles=(Role.MODEL_ADMIN,))
    action = request.POST.get("action")
    reason = request.POST.get("reason", "")
    try:
        if action == "start":
            shadow_start(model_version=version, user=request.user, reason=reason)
            messages.success(
                request,
                f"v{version.version} runs in shadow: it predicts the open and new items, unseen by reviewers.",
            )
        elif action == "stop":
            shadow_stop(model_version=version, user=request.user, reason=reason)
            messages.success(request, f"v{version.version} no longer runs in shadow.")
        else:
            messages.error(request, "Choose to start or to stop the shadow.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("models_app:overview", dataset_id=version.dataset_id)
