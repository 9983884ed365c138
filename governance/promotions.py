"""Four-eyes promotion: one model admin requests, a different one signs the decision."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from annotations.models import Dataset
from governance.audit import audit_record
from governance.audit_chain import canonical_json, to_json_value
from governance.gates import current_champion, gates_evaluate, gates_failed
from governance.models import PromotionRequest, Signature
from governance.signing import SIGNATURE_LOCKOUT as SIGNATURE_LOCKOUT  # re-exported: older imports
from governance.signing import SIGNATURE_MAX_FAILURES as SIGNATURE_MAX_FAILURES
from governance.signing import WrongSignaturePassword as WrongSignaturePassword
from governance.signing import record_hasher, signature_sign, signing_attempt, signing_refuse_if_unable
from models_app.models import Evaluation, ModelVersion
from models_app.selectors import champion_comparison
from models_app.services import champion_set

ACKNOWLEDGE_FIELD = "acknowledge_regressions"


def model_version_record_hash(model_version: ModelVersion) -> str:
    """sha256 over what a signer approves: the artifact, its snapshot and its evaluations."""
    evaluations = list(
        Evaluation.objects.filter(training_run=model_version.training_run)
        .order_by("role")
        .values("role", "model_version_id", "holdout_hash", "holdout_size", "metrics")
    )
    record = {
        "model_version_id": model_version.pk,
        "dataset_id": model_version.dataset_id,
        "version": model_version.version,
        "artifact_sha256": model_version.artifact_sha256,
        "snapshot_hash": model_version.snapshot.content_hash,
        "evaluations": evaluations,
    }
    return hashlib.sha256(canonical_json(to_json_value(record))).hexdigest()


@record_hasher("model_version")
def _model_version_hash_now(record_id: str) -> str | None:
    version = ModelVersion.objects.select_related("snapshot").filter(pk=record_id).first()
    return model_version_record_hash(version) if version is not None else None


def promotion_warnings(model_version: ModelVersion) -> list[str]:
    """Why promoting this version needs a second look: it is retired, or worse than the *current*
    champion on a tracked metric beyond tolerance (models_app.comparison). Empty: nothing to warn of."""
    return champion_comparison(model_version).warnings()


def request_warnings(model_version: ModelVersion, *, kind: str) -> list[str]:
    """The warnings for a request of `kind`: a rollback puts a retired version back on purpose, so that
    one is not a warning there; being worse than the current champion still is."""
    return champion_comparison(model_version).warnings(retired_is_a_warning=kind != PromotionRequest.Kind.ROLLBACK)


def _require_acknowledgement(warnings: list[str], acknowledged: bool, *, act: str) -> None:
    if warnings and not acknowledged:
        raise ValidationError(
            {
                ACKNOWLEDGE_FIELD: (
                    f"Tick “I have seen the warnings” to {act} this version anyway: " + " ".join(warnings)
                )
            }
        )


def promotion_request_create(
    *, model_version: ModelVersion, user: AbstractBaseUser, reason: str, acknowledge_regressions: bool = False
) -> PromotionRequest:
    """Precondition: the caller checked that `user` is a model admin of the dataset.

    A version that is retired, or worse than the current champion, needs
    `acknowledge_regressions`; without it a ValidationError names that field
    and nothing changes. The warnings are recorded in the audit event.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why this version should go live."})
    with transaction.atomic():
        # Lock order (README, "Lock order"): the dataset row first, then the version.
        Dataset.objects.select_for_update(no_key=True).get(pk=model_version.dataset_id)
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=model_version.pk)
        if version.stage == ModelVersion.Stage.CHAMPION:
            raise ValidationError("This version is already the champion.")
        if not (version.metrics.get("holdout") or {}).get("n"):
            raise ValidationError(
                "This version was not evaluated on a holdout (the dataset has none), so it cannot be promoted. "
                "Import a labelled holdout file and train again."
            )
        if PromotionRequest.objects.filter(model_version=version, status=PromotionRequest.Status.PENDING).exists():
            raise ValidationError("A promotion request for this version is already waiting for a decision.")
        warnings = promotion_warnings(version)
        _require_acknowledgement(warnings, acknowledge_regressions, act="request")
        request = PromotionRequest.objects.create(model_version=version, requested_by=user, reason=reason)
        audit_record(
            actor=user,
            action="promotion.requested",
            obj=request,
            object_type="promotion_request",
            dataset_id=version.dataset_id,
            after={
                "model_version": version.version,
                "record_hash": model_version_record_hash(version),
                "warnings": warnings,
                "warnings_acknowledged": bool(warnings),
            },
            reason=reason,
        )
    return request


def promotion_decide(
    *,
    request_id: int,
    user: AbstractBaseUser,
    approve: bool,
    password: str,
    reason: str,
    acknowledge_regressions: bool = False,
    override_reason: str = "",
) -> PromotionRequest:
    """Approve (moving the champion alias) or reject, signed by re-entering the password.

    The dataset's promotion gates (governance/gates.py) are judged against the
    champion of the moment and stored on the request; an approval with a failed
    gate needs `override_reason` and is signed with the meaning "override".

    Raises PermissionDenied if `user` made the request (four eyes; the refusal
    itself is audited), and ValidationError, changing nothing, for a wrong
    password (saying how many tries are left), a missing reason on rejection,
    an approval of a retired or worse version without `acknowledge_regressions`,
    or a request that is no longer pending.
    """
    reason = reason.strip()
    signing_refuse_if_unable(user)  # locked out, or a password a site admin set (defect 4): 403 before anything
    dataset_id = _dataset_id_of(request_id)
    try:
        with signing_attempt(user=user, object_type="promotion_request", object_id=request_id, dataset_id=dataset_id):
            return _decide(
                request_id=request_id,
                user=user,
                approve=approve,
                password=password,
                reason=reason,
                acknowledge_regressions=acknowledge_regressions,
                override_reason=override_reason.strip(),
            )
    except SelfDecisionRefused:
        # The decision rolled back; the refused attempt is recorded on its own, as a failed signature is.
        with transaction.atomic():
            audit_record(
                actor=user,
                action="promotion.self_decision_refused",
                object_type="promotion_request",
                object_id=request_id,
                dataset_id=dataset_id,
                after={"attempted": "approve" if approve else "reject"},
                reason="the requester tried to decide their own promotion request (four eyes)",
            )
        raise


def _dataset_id_of(request_id: int) -> int | None:
    return PromotionRequest.objects.filter(pk=request_id).values_list("model_version__dataset_id", flat=True).first()


class SelfDecisionRefused(PermissionDenied):
    """The requester tried to decide their own request."""


def _decision_meaning(*, approve: bool, failed: bool, rollback: bool) -> str:
    if not approve:
        return Signature.Meaning.REJECTION
    if failed:
        return Signature.Meaning.OVERRIDE
    return Signature.Meaning.ROLLBACK if rollback else Signature.Meaning.APPROVAL


def _decide(
    *,
    request_id: int,
    user: AbstractBaseUser,
    approve: bool,
    password: str,
    reason: str,
    acknowledge_regressions: bool,
    override_reason: str = "",
) -> PromotionRequest:
    # Lock order (README, "Lock order"): the dataset row, then the request, then
    # (in champion_set) the versions, then the audit chain head. The dataset id
    # never changes, so reading it before taking the locks is safe.
    dataset_id, version_id = PromotionRequest.objects.values_list("model_version__dataset_id", "model_version_id").get(
        pk=request_id
    )
    # The gates may predict the holdout with two models: judged before the locks are taken, against the champion
    # of that moment, and judged again under the lock only if the champion has moved in between (rare).
    judged_against = current_champion(dataset_id)
    gates = gates_evaluate(ModelVersion.objects.get(pk=version_id), champion=judged_against)
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        request = (
            PromotionRequest.objects.select_for_update(of=("self",), no_key=True)
            .select_related("model_version__snapshot")
            .get(pk=request_id)
        )
        if request.requested_by_id == user.pk:
            raise SelfDecisionRefused("You made this request; a different model admin must decide it.")
        if request.status != PromotionRequest.Status.PENDING:
            raise ValidationError(f"This request was already {request.status}.")
        # Against the champion as it is now (under the dataset lock), not as it was at request time.
        warnings = request_warnings(request.model_version, kind=request.kind)
        rollback = request.kind == PromotionRequest.Kind.ROLLBACK
        champion_now = current_champion(dataset_id)
        if (champion_now and champion_now.pk) != (judged_against and judged_against.pk):
            gates = gates_evaluate(request.model_version, champion=champion_now)
        failed = gates_failed(gates)
        if approve:
            # Before the password check, so a missing tick or reason does not cost a signing try.
            _require_acknowledgement(warnings, acknowledge_regressions, act="approve")
            if failed and not override_reason:
                names = ", ".join(g["gate"] for g in failed)
                raise ValidationError(
                    {
                        "override_reason": f"Failed gate(s): {names}. An approval is possible only as a signed "
                        "override: give the reason it should go live anyway."
                    }
                )
        elif not reason:
            raise ValidationError({"reason": f"Say why you reject this {request.get_kind_display().lower()}."})
        version = request.model_version
        signature = signature_sign(
            signer=user,
            password=password,
            meaning=_decision_meaning(approve=approve, failed=bool(failed), rollback=rollback),
            record_type="model_version",
            record_id=version.pk,
            record_hash=model_version_record_hash(version),
        )
        request.status = PromotionRequest.Status.APPROVED if approve else PromotionRequest.Status.REJECTED
        request.decided_by = user
        request.decided_at = signature.signed_at
        request.decision_reason = reason
        request.signature = signature
        request.gate_results = gates
        request.override_reason = override_reason if approve and failed else ""
        if approve:
            request.previous_champion = champion_set(model_version=version, actor=user, reason=reason or request.reason)
        request.save()
        audit_record(
            actor=user,
            action=f"{request.kind}.{'approved' if approve else 'rejected'}",  # promotion.* or rollback.*
            obj=request,
            object_type="promotion_request",
            dataset_id=version.dataset_id,
            before={"status": "pending"},
            after={
                "status": request.status,
                "kind": request.kind,
                "model_version": version.version,
                "signature": {
                    "printed_name": signature.printed_name,
                    "meaning": signature.meaning,
                    "signed_at": signature.signed_at,
                    "record_hash": signature.record_hash,
                },
                "warnings": warnings,
                "warnings_acknowledged": bool(warnings) and approve,
                "gates": gates,
                "gates_overridden": bool(failed) and approve,
                "override_reason": request.override_reason,
            },
            reason=reason,
        )
    return request
