"""The requester's side of a promotion request: edit a draft, sign and submit it, withdraw it.

Each service locks the dataset row, then the request row (the lock order of
promotion_decide), asks governance/promotion_states.py whether the transition
is allowed, changes the request and writes its audit event in that one
transaction. A refused transition rolls back and is recorded on its own as
`promotion.transition_refused`; a wrong signing password as `signature.failed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotations.models import Dataset
from governance.audit import audit_record
from governance.models import PromotionRequest
from governance.promotion_states import (
    Action,
    TransitionForbidden,
    TransitionRefused,
    transition_refusal_record,
    transition_target,
)
from governance.promotions import (
    _require_acknowledgement,
    envelope_refuse_substantial_change,
    request_sign_authored,
    request_warnings,
    signature_summary,
    version_refuse_unpromotable,
)
from governance.signing import signing_attempt, signing_refuse_if_unable
from models_app.models import ModelVersion


@contextmanager
def _refusals_audited(*, user: AbstractBaseUser, request_id: int) -> Iterator[None]:
    """Around the transaction: a refused transition is recorded after it rolled back."""
    try:
        yield
    except (TransitionRefused, TransitionForbidden) as refusal:
        transition_refusal_record(user=user, request_id=request_id, refusal=refusal)
        raise


def _locked(request_id: int) -> PromotionRequest:
    """The request, its dataset row and then its own row locked (in that order). Precondition: in a transaction."""
    dataset_id = PromotionRequest.objects.values_list("model_version__dataset_id", flat=True).get(pk=request_id)
    Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
    return (
        PromotionRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related("model_version__snapshot", "requested_by")
        .get(pk=request_id)
    )


def _clean_reason(reason: str, *, field: str = "reason", words: str = "Say why this version should go live.") -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError({field: words})
    return reason


def promotion_draft_edit(*, request_id: int, user: AbstractBaseUser, reason: str) -> PromotionRequest:
    """Change a draft's reason. Only its requester, only while it is a draft."""
    reason = _clean_reason(reason)
    with _refusals_audited(user=user, request_id=request_id), transaction.atomic():
        request = _locked(request_id)
        transition_target(request, Action.EDIT, user=user)
        before = request.reason
        request.reason = reason
        request.save(update_fields=["reason"])
        audit_record(
            actor=user,
            action=f"{request.kind}.draft_edited",
            obj=request,
            object_type="promotion_request",
            dataset_id=request.model_version.dataset_id,
            before={"status": request.status, "reason": before},
            after={"status": request.status, "reason": reason},
            reason="draft edited by its requester",
        )
    return request


def promotion_submit(
    *,
    request_id: int,
    user: AbstractBaseUser,
    password: str,
    reason: str | None = None,
    acknowledge_regressions: bool = False,
) -> PromotionRequest:
    """Draft -> pending: the requester signs it (meaning "authored"), optionally with a last edit of the reason.

    ValidationError, changing nothing, for a wrong password (recorded), a
    version that can no longer be promoted, one already waiting in another
    request, a rollback whose target is no longer the previous champion, or
    warnings not acknowledged. Refused transitions are recorded.
    """
    new_reason = _clean_reason(reason) if reason is not None else None
    signing_refuse_if_unable(user)
    dataset_id = PromotionRequest.objects.filter(pk=request_id).values_list("model_version__dataset_id", flat=True)
    draft = PromotionRequest.objects.select_related("model_version").filter(pk=request_id).first()
    if draft is not None and draft.kind == PromotionRequest.Kind.PROMOTION:
        # A substantial change (outside the change envelope) is refused at submission, as at a direct request;
        # rollbacks are shown the envelope but never blocked by it.
        envelope_refuse_substantial_change(model_version=draft.model_version, user=user, act="submit")
    with (
        signing_attempt(
            user=user, object_type="promotion_request", object_id=request_id, dataset_id=dataset_id.first()
        ),
        _refusals_audited(user=user, request_id=request_id),
        transaction.atomic(),
    ):
        request = _locked(request_id)
        transition_target(request, Action.SUBMIT, user=user)
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=request.model_version_id)
        if request.kind == PromotionRequest.Kind.ROLLBACK:
            from governance.rollbacks import rollback_target

            target = rollback_target(dataset_id=version.dataset_id)
            if target is None or target.pk != version.pk:
                raise ValidationError(
                    f"v{version.version} is no longer the champion the current one replaced: withdraw this draft."
                )
        else:
            version_refuse_unpromotable(version)
        if PromotionRequest.objects.filter(model_version=version, status=PromotionRequest.Status.PENDING).exists():
            raise ValidationError(f"A request to put v{version.version} live is already waiting for a decision.")
        warnings = request_warnings(version, kind=request.kind)
        _require_acknowledgement(warnings, acknowledge_regressions, act="submit")
        if new_reason is not None:
            request.reason = new_reason
            request.save(update_fields=["reason"])
        signature = request_sign_authored(request=request, user=user, password=password)
        audit_record(
            actor=user,
            action=f"{request.kind}.submitted",
            obj=request,
            object_type="promotion_request",
            dataset_id=version.dataset_id,
            before={"status": PromotionRequest.Status.DRAFT},
            after={
                "status": request.status,
                "model_version": version.version,
                "signature": signature_summary(signature),
                "warnings": warnings,
                "warnings_acknowledged": bool(warnings),
            },
            reason=request.reason,
        )
    return request


def promotion_withdraw(*, request_id: int, user: AbstractBaseUser, reason: str) -> PromotionRequest:
    """Draft or pending -> withdrawn, by its requester only, with a reason."""
    reason = _clean_reason(reason, field="withdrawal_reason", words="Say why you withdraw this request.")
    with _refusals_audited(user=user, request_id=request_id), transaction.atomic():
        request = _locked(request_id)
        before = request.status
        request.status = transition_target(request, Action.WITHDRAW, user=user)
        request.withdrawn_at = timezone.now()
        request.withdrawal_reason = reason
        request.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
        audit_record(
            actor=user,
            action=f"{request.kind}.withdrawn",
            obj=request,
            object_type="promotion_request",
            dataset_id=request.model_version.dataset_id,
            before={"status": before},
            after={"status": request.status, "model_version": request.model_version.version},
            reason=reason,
        )
    return request
