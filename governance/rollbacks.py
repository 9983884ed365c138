"""Rollback as a named act (issue 9, point 11): the previous champion back, through the same four eyes.

A rollback is a `PromotionRequest` of kind `rollback` for the version the
current champion replaced. It is requested by one model admin and decided by a
different one with a password signature of meaning "rollback", exactly as a
promotion is (`governance.promotions.promotion_decide` decides both); what
differs is what it is called everywhere it is recorded (request, signature,
audit events, pages, exports), and that the previous champion being retired is
its point, not something to warn about.

Which version is "previous": the `previous_champion` recorded by the approved
request that made the current champion. A champion that no approved request
installed (the first model, trained at seeding) has nothing to go back to, and
rolling back twice in a row swaps the two versions back, which is what a person
pressing "undo the last change" expects.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotations.models import Dataset
from governance.audit import audit_record
from governance.models import PromotionRequest
from models_app.models import ModelVersion


def rollback_target(*, dataset_id: int) -> ModelVersion | None:
    """The version a rollback would put back, or None (no champion, or nothing it replaced)."""
    champion = ModelVersion.objects.filter(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    if champion is None:
        return None
    installed_by = (
        PromotionRequest.objects.filter(model_version=champion, status=PromotionRequest.Status.APPROVED)
        .select_related("previous_champion")
        .order_by("-decided_at")
        .first()
    )
    if installed_by is None or installed_by.previous_champion is None:
        return None
    return installed_by.previous_champion


def rollback_request_create(
    *,
    dataset_id: int,
    user: AbstractBaseUser,
    reason: str,
    acknowledge_regressions: bool = False,
    password: str = "",
    draft: bool = False,
) -> PromotionRequest:
    """Request a rollback to the previous champion. Precondition: `user` is a model admin of the dataset.

    Signed by the requester (meaning "authored") and pending at once, or saved
    as a draft (`draft=True`, no password), exactly as a promotion request
    (governance/promotions.py, promotion_request_create).

    ValidationError, changing nothing, when there is no previous champion, a
    request for it is already pending, the reason is empty, the password is
    wrong (recorded), or (as for a promotion) the previous champion is worse
    than the current one on the holdout and `acknowledge_regressions` is not set.
    """
    from governance.signing import signing_attempt, signing_refuse_if_unable

    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the previous champion should go back live."})
    if not draft:
        signing_refuse_if_unable(user)
    with signing_attempt(user=user, object_type="dataset", object_id=dataset_id, dataset_id=dataset_id):
        return _rollback_create(
            dataset_id=dataset_id,
            user=user,
            reason=reason,
            acknowledge_regressions=acknowledge_regressions,
            password=password,
            draft=draft,
        )


def _rollback_create(
    *, dataset_id: int, user: AbstractBaseUser, reason: str, acknowledge_regressions: bool, password: str, draft: bool
) -> PromotionRequest:
    from governance.promotions import (
        _require_acknowledgement,
        model_version_record_hash,
        request_sign_authored,
        request_warnings,
        signature_summary,
    )

    with transaction.atomic():
        # Lock order: the dataset row first (champion changes queue on it), then the version.
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        target = rollback_target(dataset_id=dataset_id)
        if target is None:
            raise ValidationError(
                "There is no previous champion to roll back to: the current champion did not replace one "
                "through an approved request."
            )
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=target.pk)
        pending = PromotionRequest.objects.filter(model_version=version, status=PromotionRequest.Status.PENDING)
        if not draft and pending.exists():
            raise ValidationError(f"A request to put v{version.version} live is already waiting for a decision.")
        warnings = request_warnings(version, kind=PromotionRequest.Kind.ROLLBACK)
        if not draft:
            _require_acknowledgement(warnings, acknowledge_regressions, act="roll back to")
        champion = ModelVersion.objects.get(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION)
        request = PromotionRequest.objects.create(
            model_version=version,
            requested_by=user,
            reason=reason,
            kind=PromotionRequest.Kind.ROLLBACK,
            status=PromotionRequest.Status.DRAFT,
        )
        after: dict[str, object] = {
            "status": request.status,
            "model_version": version.version,
            "record_hash": model_version_record_hash(version),
            "warnings": warnings,
            "warnings_acknowledged": bool(warnings) and not draft,
        }
        if not draft:
            signature = request_sign_authored(request=request, user=user, password=password)
            after.update(status=request.status, signature=signature_summary(signature))
        audit_record(
            actor=user,
            action="rollback.draft_saved" if draft else "rollback.requested",
            obj=request,
            object_type="promotion_request",
            dataset_id=dataset_id,
            before={"champion": champion.version},
            after=after,
            reason=reason,
        )
    return request
