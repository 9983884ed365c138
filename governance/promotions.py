"""Four-eyes promotion: one model admin requests, a different one signs the decision."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from annotations.models import Dataset
from governance.audit import audit_record
from governance.audit_chain import canonical_json, to_json_value
from governance.envelope import assessment_refusal, assessment_summary, envelope_active, envelope_check
from governance.gates import current_champion, gates_evaluate, gates_failed
from governance.models import EnvelopeAssessment, PromotionRequest, Signature
from governance.promotion_states import (
    Action,
    TransitionForbidden,
    TransitionRefused,
    transition_refusal_record,
    transition_target,
)
from governance.signing import SIGNATURE_LOCKOUT as SIGNATURE_LOCKOUT  # re-exported: older imports
from governance.signing import SIGNATURE_MAX_FAILURES as SIGNATURE_MAX_FAILURES
from governance.signing import WrongSignaturePassword as WrongSignaturePassword
from governance.signing import (
    record_hasher,
    record_hasher_batch,
    signature_sign,
    signing_attempt,
    signing_refuse_if_unable,
)
from models_app.models import Evaluation, ModelVersion
from models_app.selectors import champion_comparison
from models_app.services import champion_set

ACKNOWLEDGE_FIELD = "acknowledge_regressions"


def model_version_record_hash(model_version: ModelVersion) -> str:
    """sha256 over what a signer approves: the artifact, its snapshot and its evaluations."""
    evaluations = list(
        Evaluation.objects.filter(training_run=model_version.training_run)
        .order_by("role")
        .values(*RECORD_EVALUATION_FIELDS)
    )
    return record_hash_of(model_version, evaluations=evaluations)


# What a signature covers of each evaluation of the version's training run, in role order.
RECORD_EVALUATION_FIELDS = ("role", "model_version_id", "holdout_hash", "holdout_size", "metrics")


def record_hash_of(model_version: ModelVersion, *, evaluations: list[dict[str, Any]]) -> str:
    """model_version_record_hash from evaluations already read (dicts of RECORD_EVALUATION_FIELDS, in role
    order): the lineage reads every version's evaluations in one query and checks each signature with this."""
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


def promotion_request_record_hash(request: PromotionRequest) -> str:
    """sha256 over what a requester signs when submitting: the request (kind, reason) and the version's record."""
    record = {
        "promotion_request_id": request.pk,
        "kind": request.kind,
        "requested_by": request.requested_by.get_username(),
        "reason": request.reason,
        "model_version_record_hash": model_version_record_hash(request.model_version),
    }
    return hashlib.sha256(canonical_json(to_json_value(record))).hexdigest()


@record_hasher_batch("model_version")
def _model_version_hashes_now(record_ids: list[str]) -> dict[str, str]:
    """Many versions' record hashes in two queries (the versions with their snapshots, then all evaluations)."""
    versions = list(ModelVersion.objects.select_related("snapshot").filter(pk__in=_int_ids(record_ids)))
    return {str(v.pk): h for v, h in zip(versions, _record_hashes(versions), strict=True)}


@record_hasher_batch("promotion_request")
def _promotion_request_hashes_now(record_ids: list[str]) -> dict[str, str]:
    """Many requests' record hashes in two queries (requests with their versions and requesters, evaluations)."""
    requests = list(
        PromotionRequest.objects.select_related("model_version__snapshot", "requested_by").filter(
            pk__in=_int_ids(record_ids)
        )
    )
    version_hashes = _record_hashes([r.model_version for r in requests])
    out = {}
    for request, version_hash in zip(requests, version_hashes, strict=True):
        record = {
            "promotion_request_id": request.pk,
            "kind": request.kind,
            "requested_by": request.requested_by.get_username(),
            "reason": request.reason,
            "model_version_record_hash": version_hash,
        }
        out[str(request.pk)] = hashlib.sha256(canonical_json(to_json_value(record))).hexdigest()
    return out


def _int_ids(record_ids: list[str]) -> list[int]:
    return [int(i) for i in record_ids if str(i).isascii() and str(i).isdigit()]


def _record_hashes(versions: list[ModelVersion]) -> list[str]:
    """model_version_record_hash of each version, with every version's evaluations read in one query."""
    by_run: dict[int, list[dict[str, Any]]] = {v.training_run_id: [] for v in versions}
    for row in (
        Evaluation.objects.filter(training_run_id__in=list(by_run))
        .order_by("training_run_id", "role")
        .values("training_run_id", *RECORD_EVALUATION_FIELDS)
    ):
        by_run[row.pop("training_run_id")].append(row)
    return [record_hash_of(v, evaluations=by_run[v.training_run_id]) for v in versions]


@record_hasher("promotion_request")
def _promotion_request_hash_now(record_id: str) -> str | None:
    request = (
        PromotionRequest.objects.select_related("model_version__snapshot", "requested_by").filter(pk=record_id).first()
    )
    return promotion_request_record_hash(request) if request is not None else None


def signature_summary(signature: Signature) -> dict[str, object]:
    """A signature as the audit trail records it (signature_verify can find it again by id)."""
    return {
        "id": signature.pk,
        "printed_name": signature.printed_name,
        "meaning": signature.meaning,
        "signed_at": signature.signed_at,
        "record_type": signature.record_type,
        "record_id": signature.record_id,
        "record_hash": signature.record_hash,
    }


def request_sign_authored(*, request: PromotionRequest, user: AbstractBaseUser, password: str) -> Signature:
    """The requester signs (meaning "authored") and the request becomes pending.

    Precondition: inside the caller's transaction, with the request locked (or just created) and
    the transition draft -> pending checked; wrap that transaction in signing_attempt.
    """
    signature = signature_sign(
        signer=user,
        password=password,
        meaning=Signature.Meaning.AUTHORED,
        record_type="promotion_request",
        record_id=request.pk,
        record_hash=promotion_request_record_hash(request),
    )
    request.status = PromotionRequest.Status.PENDING
    request.request_signature = signature
    request.submitted_at = signature.signed_at
    request.save(update_fields=["status", "request_signature", "submitted_at"])
    return signature


def version_refuse_unpromotable(version: ModelVersion) -> None:
    """ValidationError when `version` cannot be offered for promotion at all (champion already, no holdout)."""
    if version.stage == ModelVersion.Stage.CHAMPION:
        raise ValidationError("This version is already the champion.")
    if not (version.metrics.get("holdout") or {}).get("n"):
        raise ValidationError(
            "This version was not evaluated on a holdout (the dataset has none), so it cannot be promoted. "
            "Import a labelled holdout file and train again."
        )


def promotion_request_create(
    *,
    model_version: ModelVersion,
    user: AbstractBaseUser,
    reason: str,
    acknowledge_regressions: bool = False,
    password: str = "",
    draft: bool = False,
) -> PromotionRequest:
    """Request a promotion: signed and submitted at once (pending), or saved as a draft.

    Precondition: the caller checked that `user` is a model admin of the dataset.

    Submitted (the default): the requester signs it with their password (meaning
    "authored"; a wrong one is a ValidationError on `password`, recorded as
    `signature.failed`). A version that is retired, or worse than the current
    champion, needs `acknowledge_regressions`; without it a ValidationError names
    that field and nothing changes. The warnings are recorded in the audit event.

    `draft=True` saves it unsigned and not offered for a decision (no password,
    no acknowledgement yet: both are asked for at submission,
    governance/promotion_requests.py). A draft does not block other requests.

    A version outside the dataset's change envelope (governance/envelope.py) is
    a substantial change: a submission is refused, naming the failed clauses; the
    assessment that says so is stored and the refusal audited. (A draft is not
    judged yet: its submission is.)
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why this version should go live."})
    assessment: EnvelopeAssessment | None = None
    if not draft:
        signing_refuse_if_unable(user)
        assessment = envelope_refuse_substantial_change(model_version=model_version, user=user, act="request")
    with signing_attempt(
        user=user, object_type="model_version", object_id=model_version.pk, dataset_id=model_version.dataset_id
    ):
        return _request_create(
            version_id=model_version.pk,
            dataset_id=model_version.dataset_id,
            user=user,
            reason=reason,
            acknowledge_regressions=acknowledge_regressions,
            password=password,
            draft=draft,
            assessment=assessment,
        )


def _request_create(
    *,
    version_id: int,
    dataset_id: int,
    user: AbstractBaseUser,
    reason: str,
    acknowledge_regressions: bool,
    password: str,
    draft: bool,
    assessment: EnvelopeAssessment | None,
) -> PromotionRequest:
    with transaction.atomic():
        # Lock order (README, "Lock order"): the dataset row first, then the version.
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        version = ModelVersion.objects.select_for_update(no_key=True).get(pk=version_id)
        version_refuse_unpromotable(version)
        if (
            not draft
            and PromotionRequest.objects.filter(model_version=version, status=PromotionRequest.Status.PENDING).exists()
        ):
            raise ValidationError("A promotion request for this version is already waiting for a decision.")
        warnings = promotion_warnings(version)
        if not draft:
            _require_acknowledgement(warnings, acknowledge_regressions, act="request")
        request = PromotionRequest.objects.create(
            model_version=version, requested_by=user, reason=reason, status=PromotionRequest.Status.DRAFT
        )
        after: dict[str, object] = {
            "status": request.status,
            "model_version": version.version,
            "record_hash": model_version_record_hash(version),
            "warnings": warnings,
            "warnings_acknowledged": bool(warnings) and not draft,
        }
        if assessment is not None:
            after["envelope"] = assessment_summary(assessment)
        if not draft:
            signature = request_sign_authored(request=request, user=user, password=password)
            after.update(status=request.status, signature=signature_summary(signature))
        audit_record(
            actor=user,
            action="promotion.draft_saved" if draft else "promotion.requested",
            obj=request,
            object_type="promotion_request",
            dataset_id=version.dataset_id,
            after=after,
            reason=reason,
        )
    return request


class EnvelopeRefused(ValidationError):
    """A candidate outside the change envelope: a substantial change, not promotable through the normal path."""

    def __init__(self, assessment: EnvelopeAssessment) -> None:
        super().__init__(assessment_refusal(assessment))
        self.assessment = assessment


def envelope_refuse_substantial_change(
    *, model_version: ModelVersion, user: AbstractBaseUser, act: str
) -> EnvelopeAssessment:
    """Judge `model_version` against the active change envelope (stored in a transaction of its own, so the
    "substantial change" record stays); raise EnvelopeRefused, audited, when it falls outside."""
    assessment = envelope_check(model_version=model_version, actor=user)
    if assessment.substantial_change:
        _envelope_refusal_record(user=user, assessment=assessment, act=act)
        raise EnvelopeRefused(assessment)
    return assessment


def _envelope_refusal_record(*, user: AbstractBaseUser, assessment: EnvelopeAssessment, act: str) -> None:
    """Audit a refused request or approval of a substantial change, in a transaction of its own."""
    with transaction.atomic():
        audit_record(
            actor=user,
            action="promotion.substantial_change_refused",
            obj=assessment.model_version,
            object_type="model_version",
            dataset_id=assessment.model_version.dataset_id,
            after={
                "attempted": act,
                "model_version": assessment.model_version.version,
                "envelope_version": assessment.envelope_version.number,
                "assessment": assessment.pk,
                "failed_clauses": [c["clause"] for c in assessment.clauses if not c["passed"]],
            },
            reason="outside the change envelope: a substantial change needs a new envelope version",
        )


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
    except EnvelopeRefused as refused:
        # The decision rolled back; the refused approval is recorded on its own.
        assessment = refused.assessment
        if not EnvelopeAssessment.objects.filter(pk=assessment.pk).exists():
            # Judged again under the lock (the champion or the envelope had moved) and rolled back with the
            # decision: judge it once more and keep that, so the refusal names an assessment that exists.
            assessment = envelope_check(model_version=assessment.model_version, actor=user)
        _envelope_refusal_record(user=user, assessment=assessment, act="approve")
        raise EnvelopeRefused(assessment) from None
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
    except (TransitionRefused, TransitionForbidden) as refusal:
        transition_refusal_record(user=user, request_id=request_id, refusal=refusal)
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
    # The gates may predict the holdout with two models, and the change envelope too: both are judged
    # before the locks are taken, against the champion and envelope of that moment. If either moved by
    # the time the lock is held (rare: another decision landed in between), the locked part gives up
    # (nothing written) and the judging starts again outside the lock, so no holdout is predicted while
    # the dataset is locked. Only the last attempt judges under the lock, so a dataset whose champion
    # keeps moving still gets a decision.
    for attempt in range(1, _JUDGE_ATTEMPTS + 1):
        judged_against = current_champion(dataset_id)
        candidate = ModelVersion.objects.get(pk=version_id)
        gates = gates_evaluate(candidate, champion=judged_against)
        # Stored in its own transaction, so a refused approval keeps its assessment.
        assessment = envelope_check(model_version=candidate, actor=user, champion=judged_against)
        try:
            return _decide_locked(
                dataset_id=dataset_id,
                request_id=request_id,
                user=user,
                approve=approve,
                password=password,
                reason=reason,
                acknowledge_regressions=acknowledge_regressions,
                override_reason=override_reason,
                judged_against=judged_against,
                gates=gates,
                assessment=assessment,
                rejudge_under_lock=attempt == _JUDGE_ATTEMPTS,
            )
        except _JudgedAgainstOld:
            continue
    raise AssertionError("unreachable: the last attempt judges under the lock")


# How often a decision judges again outside the lock when the champion or envelope moved meanwhile.
_JUDGE_ATTEMPTS = 3


class _JudgedAgainstOld(Exception):
    """The champion or the envelope moved between judging and locking: judge again, outside the lock."""


def _decide_locked(
    *,
    dataset_id: int,
    request_id: int,
    user: AbstractBaseUser,
    approve: bool,
    password: str,
    reason: str,
    acknowledge_regressions: bool,
    override_reason: str,
    judged_against: ModelVersion | None,
    gates: list[dict[str, Any]],
    assessment: EnvelopeAssessment,
    rejudge_under_lock: bool,
) -> PromotionRequest:
    """The decision under the locks, on gates and an assessment judged against `judged_against`.

    Raises _JudgedAgainstOld (inside the transaction: nothing is written) when the champion or the
    active envelope is no longer what they were judged against, unless `rejudge_under_lock`.
    """
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        request = (
            PromotionRequest.objects.select_for_update(of=("self",), no_key=True)
            .select_related("model_version__snapshot")
            .get(pk=request_id)
        )
        if request.requested_by_id == user.pk:
            raise SelfDecisionRefused("You made this request; a different model admin must decide it.")
        transition_target(request, Action.APPROVE if approve else Action.REJECT, user=user)  # pending only
        # Against the champion as it is now (under the dataset lock), not as it was at request time.
        warnings = request_warnings(request.model_version, kind=request.kind)
        rollback = request.kind == PromotionRequest.Kind.ROLLBACK
        champion_now = current_champion(dataset_id)
        envelope_now = envelope_active(dataset_id)
        champion_moved = (champion_now and champion_now.pk) != (judged_against and judged_against.pk)
        envelope_moved = (envelope_now and envelope_now.pk) != assessment.envelope_version_id
        if (champion_moved or envelope_moved) and not rejudge_under_lock:
            raise _JudgedAgainstOld
        if champion_moved:
            gates = gates_evaluate(request.model_version, champion=champion_now)
        if champion_moved or envelope_moved:
            assessment = envelope_check(model_version=request.model_version, actor=user, champion=champion_now)
        failed = gates_failed(gates)
        # A rollback puts back a version that was live before: never blocked by the envelope (it is shown).
        if approve and assessment.substantial_change and not rollback:
            raise EnvelopeRefused(assessment)
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
        request.envelope_assessment = assessment if assessment.pk else None
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
                "signature": signature_summary(signature),
                "warnings": warnings,
                "warnings_acknowledged": bool(warnings) and approve,
                "gates": gates,
                "gates_overridden": bool(failed) and approve,
                "override_reason": request.override_reason,
                "envelope": assessment_summary(assessment),
            },
            reason=reason,
        )
    return request
