"""Writing a change envelope: draft a version, sign it as its author, approve someone else's (issue 10, point 5).

    draft (model admin A: clauses validated against the catalogue, nothing signed yet)
      → signed by A, meaning "authored" (A's password; the signature covers the version's record hash)
      → approved by model admin B ≠ A, meaning "approval" → the dataset's active envelope version

Every step is one transaction that takes the dataset row lock first (the lock order of DESIGN.md; envelope
rows are never updated, so there is no row of theirs to lock) and writes its audit event inside it. A wrong
password rolls the step back and is recorded by `signing_attempt` (governance/signing.py); an author who tries
to approve their own version is refused (403) and the refusal is audited on its own.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from annotations.models import Dataset
from governance.audit import audit_record
from governance.audit_chain import canonical_json, to_json_value
from governance.envelope import envelope_active
from governance.envelope_clauses import envelope_clauses_validate
from governance.models import ChangeEnvelopeSignoff, ChangeEnvelopeVersion, Signature
from governance.signing import (
    record_hasher,
    record_hasher_batch,
    signature_sign,
    signing_attempt,
    signing_refuse_if_unable,
)

RECORD_TYPE = "change_envelope_version"


def envelope_version_record_hash(
    *, dataset_id: int, number: int, clauses: dict[str, Any], change_summary: str, authored_by_id: int
) -> str:
    """sha256 over what the author and the approver sign: the dataset, the number, the clauses, the summary
    and who wrote it."""
    record = {
        "dataset_id": dataset_id,
        "number": number,
        "clauses": clauses,
        "change_summary": change_summary,
        "authored_by": authored_by_id,
    }
    return hashlib.sha256(canonical_json(to_json_value(record))).hexdigest()


def _hash_of(version: ChangeEnvelopeVersion) -> str:
    return envelope_version_record_hash(
        dataset_id=version.dataset_id,
        number=version.number,
        clauses=version.clauses,
        change_summary=version.change_summary,
        authored_by_id=version.authored_by_id,
    )


@record_hasher(RECORD_TYPE)
def _version_hash_now(record_id: str) -> str | None:
    version = ChangeEnvelopeVersion.objects.filter(pk=record_id).first()
    return None if version is None else _hash_of(version)


@record_hasher_batch(RECORD_TYPE)
def _version_hashes_now(record_ids: list[str]) -> dict[str, str]:
    """The envelope page's sign-offs checked in one query, not one per signature."""
    ids = [int(i) for i in record_ids if i.isascii() and i.isdigit()]
    return {str(v.pk): _hash_of(v) for v in ChangeEnvelopeVersion.objects.filter(pk__in=ids)}


def envelope_version_draft(
    *, dataset: Dataset, user: AbstractBaseUser, clauses: Any, change_summary: str
) -> ChangeEnvelopeVersion:
    """Draft the next envelope version of `dataset`. Precondition: `user` is a model admin of the dataset.

    ValidationError keyed by clause path (governance/envelope_clauses.py) or "change_summary"; nothing is
    written then.
    """
    change_summary = change_summary.strip()
    errors: dict[str, Any] = {}
    try:
        clean = envelope_clauses_validate(clauses)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not change_summary:
        errors["change_summary"] = "Say what this version changes and why."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset.pk)
        number = (ChangeEnvelopeVersion.objects.filter(dataset=dataset).aggregate(n=Max("number"))["n"] or 0) + 1
        version = ChangeEnvelopeVersion.objects.create(
            dataset=dataset,
            number=number,
            clauses=clean,
            change_summary=change_summary,
            authored_by=user,
            record_hash=envelope_version_record_hash(
                dataset_id=dataset.pk,
                number=number,
                clauses=clean,
                change_summary=change_summary,
                authored_by_id=user.pk,
            ),
        )
        audit_record(
            actor=user,
            action="change_envelope.drafted",
            obj=version,
            object_type=RECORD_TYPE,
            dataset_id=dataset.pk,
            after={"number": number, "clauses": clean, "record_hash": version.record_hash},
            reason=change_summary,
        )
    return version


def envelope_version_sign(*, version: ChangeEnvelopeVersion, user: AbstractBaseUser, password: str) -> Signature:
    """The author signs their draft (meaning "authored"). PermissionDenied for anyone else; ValidationError
    when it is already signed or for a wrong password (recorded)."""
    if version.authored_by_id != user.pk:
        raise PermissionDenied("Only the author of an envelope version signs it as authored.")
    signing_refuse_if_unable(user)
    with signing_attempt(user=user, object_type=RECORD_TYPE, object_id=version.pk, dataset_id=version.dataset_id):
        with transaction.atomic():
            Dataset.objects.select_for_update(no_key=True).get(pk=version.dataset_id)
            if ChangeEnvelopeSignoff.objects.filter(version=version, kind=ChangeEnvelopeSignoff.Kind.AUTHORED).exists():
                raise ValidationError(f"Envelope v{version.number} is already signed by its author.")
            signature = signature_sign(
                signer=user,
                password=password,
                meaning=Signature.Meaning.AUTHORED,
                record_type=RECORD_TYPE,
                record_id=version.pk,
                record_hash=version.record_hash,
            )
            ChangeEnvelopeSignoff.objects.create(
                version=version,
                kind=ChangeEnvelopeSignoff.Kind.AUTHORED,
                signer=user,
                version_author_id=version.authored_by_id,
                signature=signature,
            )
            audit_record(
                actor=user,
                action="change_envelope.signed",
                obj=version,
                object_type=RECORD_TYPE,
                dataset_id=version.dataset_id,
                after=_signature_facts(signature, number=version.number),
            )
    return signature


class SelfApprovalRefused(PermissionDenied):
    """The author tried to approve their own envelope version."""


def envelope_version_approve(
    *, version: ChangeEnvelopeVersion, user: AbstractBaseUser, password: str, reason: str = ""
) -> Signature:
    """A model admin other than the author approves a signed version (meaning "approval"): it becomes active.

    Precondition: `user` is a model admin of the dataset. PermissionDenied (audited) for the author;
    ValidationError for a version not yet signed by its author, already approved, older than the active one,
    or a wrong password (recorded).
    """
    if version.authored_by_id == user.pk:
        with transaction.atomic():
            audit_record(
                actor=user,
                action="change_envelope.self_approval_refused",
                obj=version,
                object_type=RECORD_TYPE,
                dataset_id=version.dataset_id,
                after={"number": version.number},
                reason="the author tried to approve their own envelope version (four eyes)",
            )
        raise SelfApprovalRefused("You wrote this envelope version; a different model admin must approve it.")
    signing_refuse_if_unable(user)
    reason = reason.strip()
    with signing_attempt(user=user, object_type=RECORD_TYPE, object_id=version.pk, dataset_id=version.dataset_id):
        with transaction.atomic():
            Dataset.objects.select_for_update(no_key=True).get(pk=version.dataset_id)
            kinds = set(ChangeEnvelopeSignoff.objects.filter(version=version).values_list("kind", flat=True))
            if ChangeEnvelopeSignoff.Kind.AUTHORED not in kinds:
                raise ValidationError(f"Envelope v{version.number} is not signed by its author yet.")
            if ChangeEnvelopeSignoff.Kind.APPROVAL in kinds:
                raise ValidationError(f"Envelope v{version.number} is already approved.")
            active = envelope_active(version.dataset_id)
            if active is not None and active.number > version.number:
                raise ValidationError(
                    f"Envelope v{active.number} is already active; v{version.number} is older and cannot replace it."
                )
            signature = signature_sign(
                signer=user,
                password=password,
                meaning=Signature.Meaning.APPROVAL,
                record_type=RECORD_TYPE,
                record_id=version.pk,
                record_hash=version.record_hash,
            )
            ChangeEnvelopeSignoff.objects.create(
                version=version,
                kind=ChangeEnvelopeSignoff.Kind.APPROVAL,
                signer=user,
                version_author_id=version.authored_by_id,
                signature=signature,
                reason=reason,
            )
            audit_record(
                actor=user,
                action="change_envelope.approved",
                obj=version,
                object_type=RECORD_TYPE,
                dataset_id=version.dataset_id,
                before={"active_version": active.number if active else None},
                after={"active_version": version.number} | _signature_facts(signature, number=version.number),
                reason=reason,
            )
    return signature


def _signature_facts(signature: Signature, *, number: int) -> dict[str, Any]:
    return {
        "number": number,
        "signature": {
            "printed_name": signature.printed_name,
            "meaning": signature.meaning,
            "signed_at": signature.signed_at,
            "record_hash": signature.record_hash,
        },
    }
