"""Governance pages: promotions (request, sign), the audit trail, item history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.selectors import dataset_get_for_user, datasets_for_user
from governance.audit import ReadPurpose, data_access_record
from governance.audit_labels import audit_rows
from governance.envelope import NO_ENVELOPE, envelope_active, envelope_preview, latest_assessments
from governance.forms import AuditFilterForm
from governance.gates import gates_evaluate, gates_for, promotion_gates_update
from governance.kept_checkpoint_forms import KeptCheckpointsForm
from governance.models import AuditVerificationRun, PromotionRequest
from governance.promotion_requests import promotion_draft_edit, promotion_submit, promotion_withdraw
from governance.promotions import (
    ACKNOWLEDGE_FIELD,
    model_version_record_hash,
    promotion_decide,
    promotion_request_create,
    request_warnings,
)
from governance.rollbacks import rollback_request_create, rollback_target
from governance.selectors import (
    PromotionsOverview,
    audit_actions,
    audit_actors,
    audit_events_for_user,
    audit_page,
    audit_verification_run_get_for_user,
    item_history_for_user,
    promotion_get_for_user,
    promotion_requests_page,
    promotions_overview_get_for_user,
)
from governance.signing import signature_checks_for, signature_verify
from governance.verification_runs import audit_verification_request
from models_app.holdout_evaluation import out_of_time_compare
from models_app.selectors import champion_comparison, model_version_get_for_user
from workflow_site.access import MODEL_READ_ROLES, Role, has_role, require_role


@require_GET
@login_required
def promotion_list(request: HttpRequest, dataset_id: int) -> HttpResponse:
    overview = promotions_overview_get_for_user(user=request.user, dataset_id=dataset_id)
    return _promotion_list_page(request, overview)


def _status_filter(request: HttpRequest) -> str:
    """The list's ?status= filter: one of the statuses, or "" for all (anything else is ignored)."""
    status = request.GET.get("status", "")
    return status if status in PromotionRequest.Status.values else ""


def _promotion_list_page(
    request: HttpRequest, overview: PromotionsOverview, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    status_filter = _status_filter(request)
    page = promotion_requests_page(
        user=request.user, dataset=overview.dataset, status=status_filter, before=_page_bound(request, "before")
    )
    context = {
        "dataset": overview.dataset,
        "overview": overview,
        "rows": _rows_with_checks(page.requests),
        "older": page.older,
        "status_filter": status_filter,
        "statuses": PromotionRequest.Status.choices,
        "rollback_to": rollback_target(dataset_id=overview.dataset.pk),
        "errors": errors or {},
        "posted": request.POST,
    }
    context["gates"] = gates_for(overview.dataset)
    # The change envelope: the active version and each candidate's last stored check against it (made when a
    # promotion is requested or decided; a page view writes nothing).
    context["envelope"] = envelope_active(overview.dataset.pk)
    context["envelope_checks"] = latest_assessments(versions=overview.candidates, envelope=context["envelope"])
    context["no_envelope_words"] = NO_ENVELOPE
    if context["rollback_to"] is not None:
        context["rollback_warnings"] = request_warnings(context["rollback_to"], kind=PromotionRequest.Kind.ROLLBACK)
    return render(request, "governance/promotion_list.html", context, status=status)


def _rows_with_checks(requests: list[PromotionRequest]) -> list[tuple]:
    """Each request with its decision's and its requester's signature checked against the record as it is now."""
    checks = signature_checks_for([s for r in requests for s in (r.signature, r.request_signature) if s])
    return [(r, checks.get(r.signature_id), checks.get(r.request_signature_id)) for r in requests]


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
            model_version=version,
            user=request.user,
            reason=request.POST.get("reason", ""),
            acknowledge_regressions=request.POST.get(ACKNOWLEDGE_FIELD) == "on",
            password=request.POST.get("password", ""),
            draft=request.POST.get("draft") == "1",
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            # A field's error is shown next to that field, with what was typed kept.
            overview = promotions_overview_get_for_user(user=request.user, dataset_id=dataset.pk)
            return _promotion_list_page(request, overview, errors=exc.message_dict, status=400)
        messages.error(request, " ".join(exc.messages))
        return redirect("governance:promotion_list", dataset_id=dataset.pk)
    except ValueError:
        messages.error(request, f"“{request.POST.get('model_version', '')}” is not a model version id.")
        return redirect("governance:promotion_list", dataset_id=dataset.pk)
    if promotion.is_draft:
        messages.success(request, f"Draft request for v{version.version} saved; submit it when it is ready.")
    else:
        messages.success(
            request, f"Promotion of v{version.version} signed and requested; another model admin must approve it."
        )
    return redirect("governance:promotion_detail", pk=promotion.pk)


@require_POST
@login_required
def rollback_request_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    try:
        rollback = rollback_request_create(
            dataset_id=dataset.pk,
            user=request.user,
            reason=request.POST.get("rollback_reason", ""),
            acknowledge_regressions=request.POST.get("rollback_" + ACKNOWLEDGE_FIELD) == "on",
            password=request.POST.get("rollback_password", ""),
            draft=request.POST.get("draft") == "1",
        )
    except ValidationError as exc:
        overview = promotions_overview_get_for_user(user=request.user, dataset_id=dataset.pk)
        if hasattr(exc, "error_dict"):  # next to the rollback form's own fields
            errors = {f"rollback_{field}": messages_ for field, messages_ in exc.message_dict.items()}
            return _promotion_list_page(request, overview, errors=errors, status=400)
        messages.error(request, " ".join(exc.messages))
        return redirect("governance:promotion_list", dataset_id=dataset.pk)
    messages.success(
        request,
        f"Draft rollback to v{rollback.model_version.version} saved; submit it when it is ready."
        if rollback.is_draft
        else f"Rollback to v{rollback.model_version.version} signed and requested; another model admin must decide.",
    )
    return redirect("governance:promotion_detail", pk=rollback.pk)


@require_POST
@login_required
def promotion_gates_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get_for_user(user=request.user, pk=dataset_id, roles=(Role.MODEL_ADMIN,))
    values: dict = {}
    try:
        for name in ("min_holdout_accuracy", "max_ece", "max_regression_points", "max_subgroup_regression_points"):
            raw = request.POST.get(name, "").strip()
            values[name] = float(raw) if raw else None
        values["paired_test_not_worse"] = request.POST.get("paired_test_not_worse") == "on"
        promotion_gates_update(dataset=dataset, user=request.user, values=values)
    except ValueError:
        messages.error(request, "Every gate is a number (or empty for none).")
    except ValidationError as exc:
        messages.error(request, " ".join(f"{k.replace('_', ' ')}: {' '.join(v)}" for k, v in exc.message_dict.items()))
    else:
        messages.success(request, "Promotion gates saved.")
    return redirect("governance:promotion_list", dataset_id=dataset.pk)


@require_GET
@login_required
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    promotion = promotion_get_for_user(user=request.user, pk=pk, roles=MODEL_READ_ROLES)
    return _promotion_detail_page(request, promotion)


def _promotion_detail_page(
    request: HttpRequest, promotion: PromotionRequest, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    version = promotion.model_version
    comparison = champion_comparison(version)
    # Live against today's champion while pending; as stored with the decision afterwards.
    open_ = promotion.is_pending or promotion.is_draft
    gates = gates_evaluate(version) if open_ else promotion.gate_results
    # The change envelope beside the gates: judged now (not stored) while open, as stored with the decision after.
    envelope = envelope_preview(model_version=version) if open_ else promotion.envelope_assessment
    return render(
        request,
        "governance/promotion_detail.html",
        {
            "promotion": promotion,
            "dataset": version.dataset,
            "version": version,
            "comparison": comparison,
            # At the decision, not at training: the corrections made since both models froze their data.
            "out_of_time": out_of_time_compare(version=version, champion=comparison.champion)
            if promotion.is_pending
            else None,
            "warnings": request_warnings(version, kind=promotion.kind) if open_ else [],
            # Live against today's champion while pending; as stored with the decision afterwards.
            "gates": gates,
            "gates_failed": [g for g in gates if not g["passed"]],
            "envelope": envelope,
            "no_envelope_words": NO_ENVELOPE,
            "record_hash": model_version_record_hash(version),
            "signature_check": signature_verify(promotion.signature) if promotion.signature else None,
            "request_signature_check": (
                signature_verify(promotion.request_signature) if promotion.request_signature else None
            ),
            "is_requester": promotion.requested_by_id == request.user.pk,
            "can_edit": promotion.is_draft and promotion.requested_by_id == request.user.pk,
            "can_withdraw": (promotion.is_draft or promotion.is_pending)
            and promotion.requested_by_id == request.user.pk
            and has_role(request.user, Role.MODEL_ADMIN),
            "can_decide": (
                promotion.is_pending
                and promotion.requested_by_id != request.user.pk
                and has_role(request.user, Role.MODEL_ADMIN)
            ),
            "waiting_for_other_admin": promotion.is_pending and promotion.requested_by_id == request.user.pk,
            "errors": errors or {},
            "posted": request.POST,
        },
        status=status,
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
            acknowledge_regressions=request.POST.get(ACKNOWLEDGE_FIELD) == "on",
            override_reason=request.POST.get("override_reason", ""),
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            # Shown next to the field it is about (the password, the reason, the acknowledgement).
            return _promotion_detail_page(request, promotion, errors=exc.message_dict, status=400)
        messages.error(request, " ".join(exc.messages))
    else:
        decided = "approved" if decision == "approve" else "rejected"
        messages.success(request, f"{promotion.get_kind_display()} {decided} and signed.")
    return redirect("governance:promotion_detail", pk=promotion.pk)


def _requester_act(request: HttpRequest, pk: int, act: Callable[[PromotionRequest], object], done: str) -> HttpResponse:
    """Run a requester's act on a request; a field error re-renders the page next to its field."""
    promotion = promotion_get_for_user(user=request.user, pk=pk, roles=(Role.MODEL_ADMIN,))
    try:
        act(promotion)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            return _promotion_detail_page(request, promotion, errors=exc.message_dict, status=400)
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect("governance:promotion_detail", pk=promotion.pk)


@require_POST
@login_required
def promotion_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _requester_act(
        request,
        pk,
        lambda p: promotion_draft_edit(request_id=p.pk, user=request.user, reason=request.POST.get("reason", "")),
        "Draft saved.",
    )


@require_POST
@login_required
def promotion_submit_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _requester_act(
        request,
        pk,
        lambda p: promotion_submit(
            request_id=p.pk,
            user=request.user,
            password=request.POST.get("password", ""),
            reason=request.POST.get("reason") if "reason" in request.POST else None,
            acknowledge_regressions=request.POST.get(ACKNOWLEDGE_FIELD) == "on",
        ),
        "Request signed and submitted; another model admin must decide it.",
    )


@require_POST
@login_required
def promotion_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _requester_act(
        request,
        pk,
        lambda p: promotion_withdraw(
            request_id=p.pk, user=request.user, reason=request.POST.get("withdrawal_reason", "")
        ),
        "Request withdrawn.",
    )


@require_GET
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    require_role(request.user, Role.AUDITOR)
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()
    # A bad field is reported and ignored; the valid ones still filter.
    filters = form.to_filters()
    page = audit_page(
        audit_events_for_user(user=request.user, filters=filters),
        before=_page_bound(request, "before"),
        after=_page_bound(request, "after"),
    )
    return render(
        request,
        "governance/audit_list.html",
        {
            "page": page,
            "rows": audit_rows(page.events),
            "filters": filters,
            "errors": form.error_list(),
            "actions": audit_actions(),
            "actors": audit_actors(),
            "datasets": datasets_for_user(user=request.user),
        },
        status=200 if valid else 400,
    )


def _page_bound(request: HttpRequest, name: str) -> int | None:
    """A keyset page bound (?before= / ?after=, a seq or an id); anything but a whole number from 1 (seqs and
    ids start at 1) within the column's range is ignored, giving the first page. ASCII digits only:
    str.isdigit() also accepts "²", which int() refuses."""
    return _record_id(request.GET.get(name, ""))


def _record_id(value: str) -> int | None:
    """A whole number from 1 within a bigint's range, or None (ASCII digits only, as _page_bound says)."""
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 2**63 else None


@require_http_methods(["GET", "POST"])
@login_required
def audit_verify(request: HttpRequest) -> HttpResponse:
    """GET: the page, with its button; POST: ask a worker to verify now (governance/verification_runs.py).

    Verifying walks the whole trail (seconds at a million events) and writes events, so it is
    a POST, and it runs in a worker: the answer is the run's progress, which polls itself
    (htmx) until the outcome is in. Without JavaScript the POST redirects to the run's page.
    """
    require_role(request.user, Role.AUDITOR)
    if request.method == "GET":
        template = "governance/audit_list.html#verify" if request.htmx else "governance/audit_verify.html"
        return render(request, template, {"verified": False, "kept_form": KeptCheckpointsForm()})
    if request.POST.get("kept"):  # the upload form: checkpoint documents kept outside Loupe (a full page POST)
        kept_form = KeptCheckpointsForm(request.POST, request.FILES)
        if not kept_form.is_valid():  # nothing is asked for; the page says which file is wrong and why
            context = {"verified": False, "kept_form": kept_form}
            return render(request, "governance/audit_verify.html", context, status=400)
        run, _ = audit_verification_request(actor=request.user, exported_documents=kept_form.cleaned_data["documents"])
        return redirect("governance:audit_verify_run", run_id=run.pk)
    # "Verify again" after a run that had kept checkpoints checks the trail against the same documents.
    again = _record_id(request.POST.get("again", ""))
    kept = []
    if again is not None:
        kept = audit_verification_run_get_for_user(user=request.user, pk=again).exported_checkpoints
    run, _ = audit_verification_request(actor=request.user, exported_documents=kept or None)
    if not request.htmx:
        return redirect("governance:audit_verify_run", run_id=run.pk)
    return render(request, "governance/audit_list.html#verify", _verification_context(run, htmx=True))


@require_GET
@login_required
def audit_verify_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """One requested verification: its progress while a worker walks, then what it found."""
    run = audit_verification_run_get_for_user(user=request.user, pk=run_id)
    template = "governance/audit_list.html#verify" if request.htmx else "governance/audit_verify.html"
    context = _verification_context(run, htmx=bool(request.htmx))
    return render(request, template, {**context, "kept_form": KeptCheckpointsForm()})


def _verification_context(run: AuditVerificationRun, *, htmx: bool) -> dict[str, Any]:
    result = run.result or {}
    done = run.status == AuditVerificationRun.Status.DONE
    return {
        "run": run,
        "verified": done,
        "checked": result.get("events_checked", 0),
        "broken": result.get("chain_break"),
        "problems": result.get("problems", []),
        "checkpoints": result.get("checkpoints_checked", 0),
        "kept": result.get("exported_checked", 0),
        "tombstones": result.get("tombstones", 0),
        "walk_seconds": (run.finished_at - run.started_at).total_seconds() if done and run.started_at else None,
        # The integrity line at the top of the page says when the trail was last verified: swapped too.
        "integrity_out_of_band": htmx and done,
    }


@require_GET
@login_required
def item_history(request: HttpRequest, item_id: int) -> HttpResponse:
    context = item_history_for_user(user=request.user, item_id=item_id)
    context["dataset"] = context["item"].dataset
    data_access_record(user=request.user, item=context["item"], purpose=ReadPurpose.ITEM_HISTORY)
    return render(request, "governance/item_history.html", context)
