"""The change envelope's page (issue 10, point 5): the active version, its history with signatures, and for model
admins the draft form, signing one's own draft and approving someone else's. Auditors read; others get 403."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations.selectors import dataset_get_for_user
from governance.envelope_forms import clauses_from_post, draft_form
from governance.envelope_services import envelope_version_approve, envelope_version_draft, envelope_version_sign
from governance.selectors import envelope_overview_get_for_user, envelope_version_get_for_user
from workflow_site.access import Role, has_role


@require_GET
@login_required
def envelope_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    return _page(request, dataset_id)


def _page(
    request: HttpRequest,
    dataset_id: int,
    *,
    posted_clauses: dict | None = None,
    errors: dict | None = None,
    version_errors: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    overview = envelope_overview_get_for_user(user=request.user, dataset_id=dataset_id)
    # After an error the form shows what was posted; otherwise it starts from the active version.
    start_from = posted_clauses
    if start_from is None and overview.active is not None:
        start_from = overview.active.clauses
    return render(
        request,
        "governance/envelope_detail.html",
        {
            "dataset": overview.dataset,
            "overview": overview,
            "is_model_admin": has_role(request.user, Role.MODEL_ADMIN),
            "form": draft_form(
                clauses=start_from, change_summary=request.POST.get("change_summary", ""), errors=errors
            ),
            "version_errors": version_errors or {},
        },
        status=status,
    )


@require_POST
@login_required
def envelope_draft_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    clauses = clauses_from_post(request.POST)
    try:
        version = envelope_version_draft(
            dataset=dataset, user=request.user, clauses=clauses, change_summary=request.POST.get("change_summary", "")
        )
    except ValidationError as exc:
        return _page(request, dataset.pk, posted_clauses=clauses, errors=exc.message_dict, status=400)
    messages.success(request, f"Envelope v{version.number} drafted. Sign it as its author, then ask another admin.")
    return redirect("governance:envelope", dataset_id=dataset.pk)


@require_POST
@login_required
def envelope_sign_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = envelope_version_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
    try:
        envelope_version_sign(version=version, user=request.user, password=request.POST.get("password", ""))
    except ValidationError as exc:
        return _version_error(request, version, exc)
    messages.success(request, f"Envelope v{version.number} signed as its author.")
    return redirect("governance:envelope", dataset_id=version.dataset_id)


@require_POST
@login_required
def envelope_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = envelope_version_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
    try:
        envelope_version_approve(
            version=version,
            user=request.user,
            password=request.POST.get("password", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        return _version_error(request, version, exc)
    messages.success(request, f"Envelope v{version.number} approved and signed: it is now the active version.")
    return redirect("governance:envelope", dataset_id=version.dataset_id)


def _version_error(request: HttpRequest, version: object, exc: ValidationError) -> HttpResponse:
    """A wrong password is shown next to that version's password field; anything else as a message."""
    dataset_id = version.dataset_id  # type: ignore[attr-defined]
    if hasattr(exc, "error_dict"):
        errors = {version.pk: exc.message_dict}  # type: ignore[attr-defined]
        return _page(request, dataset_id, version_errors=errors, status=400)
    messages.error(request, " ".join(exc.messages))
    return redirect("governance:envelope", dataset_id=dataset_id)
