"""Governance pages: promotions (request, sign), the audit trail, item history."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotations.models import Dataset
from annotations.selectors import dataset_get_for_user
from governance.audit_chain import verify_chain
from governance.models import AuditEvent, DataAccess, PromotionRequest
from governance.promotions import model_version_record_hash, promotion_decide, promotion_request_create
from governance.roles import Role, has_role, require_role
from governance.selectors import (
    AuditFilters,
    audit_actions,
    audit_events_for_user,
    chain_head,
    item_history_for_user,
    promotion_get_for_user,
)
from governance.services import data_access_record
from models_app.models import ModelVersion
from models_app.selectors import comparison_rows, model_version_get_for_user

READ_ROLES = (Role.MODEL_ADMIN, Role.AUDITOR)


@require_GET
@login_required
def promotion_list(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=READ_ROLES)
    requests = PromotionRequest.objects.filter(model_version__dataset=dataset).select_related(
        "model_version", "requested_by", "decided_by"
    )
    candidates = ModelVersion.objects.filter(dataset=dataset).exclude(stage=ModelVersion.Stage.CHAMPION)
    return render(
        request,
        "governance/promotion_list.html",
        {
            "dataset": dataset,
            "requests": requests,
            "candidates": candidates,
            "champion": ModelVersion.objects.filter(dataset=dataset, stage=ModelVersion.Stage.CHAMPION).first(),
        },
    )


@require_POST
@login_required
def promotion_request_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    try:
        version = model_version_get_for_user(
            user=request.user, pk=int(request.POST.get("model_version", "0")), roles=(Role.MODEL_ADMIN,)
        )
        if version.dataset_id != dataset.pk:
            raise ValidationError("That model version belongs to another dataset.")
        promotion = promotion_request_create(
            model_version=version, user=request.user, reason=request.POST.get("reason", "")
        )
    except (ValueError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("governance:promotion_list", dataset_id=dataset.pk)
    messages.success(request, f"Promotion of v{version.version} requested; another model admin must approve it.")
    return redirect("governance:promotion_detail", pk=promotion.pk)


@require_GET
@login_required
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    promotion = promotion_get_for_user(user=request.user, pk=pk, roles=READ_ROLES)
    version = promotion.model_version
    return render(
        request,
        "governance/promotion_detail.html",
        {
            "promotion": promotion,
            "dataset": version.dataset,
            "version": version,
            "comparison": comparison_rows(version.training_run),
            "record_hash": model_version_record_hash(version),
            "can_decide": (
                promotion.status == PromotionRequest.Status.PENDING
                and promotion.requested_by_id != request.user.pk
                and has_role(request.user, Role.MODEL_ADMIN)
            ),
            "is_requester": promotion.requested_by_id == request.user.pk,
        },
    )


@require_POST
@login_required
def promotion_decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, "Choose approve or reject.")
        return redirect("governance:promotion_detail", pk=promotion.pk)
    try:
        promotion_decide(
            request_id=promotion.pk,
            user=request.user,
            approve=decision == "approve",
            password=request.POST.get("password", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Promotion {'approved' if decision == 'approve' else 'rejected'} and signed.")
    return redirect("governance:promotion_detail", pk=promotion.pk)


def _parse_date(raw: str, field: str, errors: list[str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{field}: “{raw}” is not a date (YYYY-MM-DD).")
        return None


@require_GET
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    require_role(request.user, Role.AUDITOR)
    errors: list[str] = []
    dataset_raw = request.GET.get("dataset", "")
    dataset_id = None
    if dataset_raw:
        try:
            dataset_id = int(dataset_raw)
        except ValueError:
            errors.append(f"dataset: “{dataset_raw}” is not a dataset id.")
    filters = AuditFilters(
        actor=request.GET.get("actor", "").strip(),
        action=request.GET.get("action", "").strip(),
        dataset_id=dataset_id,
        date_from=_parse_date(request.GET.get("from", ""), "From", errors),
        date_to=_parse_date(request.GET.get("to", ""), "To", errors),
    )
    events = audit_events_for_user(user=request.user, filters=filters).select_related("actor")
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "governance/audit_list.html",
        {
            "page": page,
            "filters": filters,
            "errors": errors,
            "actions": audit_actions(),
            "datasets": Dataset.objects.all(),
            "query": query.urlencode(),
            "actors": AuditEvent.objects.exclude(actor_username="")
            .order_by("actor_username")
            .values_list("actor_username", flat=True)
            .distinct(),
        },
        status=400 if errors else 200,
    )


@require_GET
@login_required
def audit_verify(request: HttpRequest) -> HttpResponse:
    require_role(request.user, Role.AUDITOR)
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq").iterator(chunk_size=2000), head=chain_head())
    template = "governance/audit_list.html#verify" if request.htmx else "governance/audit_verify.html"
    return render(request, template, {"checked": checked, "broken": broken, "verified": True})


@require_GET
@login_required
def item_history(request: HttpRequest, item_id: int) -> HttpResponse:
    context = item_history_for_user(user=request.user, item_id=item_id)
    context["dataset"] = context["item"].dataset
    data_access_record(user=request.user, item=context["item"], purpose=DataAccess.Purpose.ITEM_HISTORY)
    return render(request, "governance/item_history.html", context)
