"""Narratives of model cards and datasheets (issue 10, point 8): written by a model admin, signed, versioned.

A model card and a datasheet are generated from registry facts (governance/model_cards.py), but
some sections only a person can write: what the model is for and not for, the factors that matter,
the ethical considerations, the caveats; why the data was collected, how, for what, and who keeps
it. These are *narratives*: plain text (line breaks kept, everything escaped on the page), written
by a model admin of the dataset.

Versions. Every save is a new DocumentNarrative row with the next version number; rows are never
changed or deleted (model and database refuse). A version is a *draft* until its author signs it
(meaning "authored"); the document shows the latest signed version as its text, with its
signatures and whether each still verifies, and lists every version (drafts marked as drafts,
never shown as the document's text). A second model admin may sign the shown version "reviewed".

What is signed. The record hash of a narrative (record type "document_narrative", registered with
governance/signing.py) is a sha256 over its document, subject, version and text, and over the
subject as it is now: the model version's own signed record (artifact, snapshot, evaluations:
governance/promotions.py) or the snapshot's content hash. So a signature fails to verify when the
text is changed behind the app's back or when the model version it describes is.

Concurrency. Two admins saving at once both read "next is N"; the unique key (subject, version)
lets one insert and the other gets a ValidationError asking to reload (no lock of its own is taken,
so the site's lock order is unchanged).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotations.models import Dataset
from governance.audit import audit_record
from governance.audit_chain import canonical_json
from governance.models import DocumentNarrative, DocumentNarrativeSignature, Signature
from governance.promotions import model_version_record_hash
from governance.signing import SignatureCheck, record_hasher, signature_sign, signing_attempt
from models_app.models import DatasetSnapshot, ModelVersion
from workflow_site.access import AnyUser, Role, has_role, missing_record, require_dataset_access, require_role

RECORD_TYPE = "document_narrative"
MAX_SECTION_CHARS = 10_000

Document = DocumentNarrative.Document

# Each document's narrative sections, in the order the document shows them: (name, heading, what to write).
SECTIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    Document.MODEL_CARD: (
        ("intended_use", "Intended use", "What the model is for, for whom, in which setting."),
        ("out_of_scope", "Out-of-scope uses", "Uses it must not be put to, and why."),
        ("factors", "Factors", "Groups, instruments or settings whose results may differ."),
        ("ethical_considerations", "Ethical considerations", "Risks, harms and what is done about them."),
        ("caveats", "Caveats and recommendations", "What a user of its output should know or do."),
    ),
    Document.DATASHEET: (
        ("motivation", "Motivation", "Why this dataset was created, by whom, and for which task."),
        ("collection_process", "Collection process", "How the data was acquired, sampled and over what time."),
        ("uses", "Uses", "What it has been and should not be used for."),
        ("maintenance", "Maintenance", "Who maintains it, how errors are reported, how it is updated."),
    ),
}

Subject = ModelVersion | DatasetSnapshot


def section_names(document: str) -> tuple[str, ...]:
    return tuple(name for name, _, _ in SECTIONS[document])


def _subject_filter(document: str, subject: Subject) -> dict[str, Any]:
    return {"model_version": subject} if document == Document.MODEL_CARD else {"snapshot": subject}


def subject_hash(document: str, subject: Subject) -> str:
    """What the narrative describes, as it is now: the version's signed record or the snapshot's content hash."""
    if document == Document.MODEL_CARD:
        assert isinstance(subject, ModelVersion)
        return model_version_record_hash(subject)
    assert isinstance(subject, DatasetSnapshot)
    return hashlib.sha256(canonical_json({"snapshot_id": subject.pk, "sha256": subject.content_hash})).hexdigest()


def narrative_record_hash(narrative: DocumentNarrative, subject: Subject) -> str:
    """sha256 over the narrative's text and identity and the subject's hash now (module docstring)."""
    return _record_hash_with(narrative, subject, subject_hash(narrative.document, subject))


def _subject_of(narrative: DocumentNarrative) -> Subject:
    if narrative.document == Document.MODEL_CARD:
        return ModelVersion.objects.select_related("snapshot", "training_run").get(pk=narrative.model_version_id)
    return DatasetSnapshot.objects.get(pk=narrative.snapshot_id)


@record_hasher(RECORD_TYPE)
def _narrative_hash_now(record_id: str) -> str | None:
    narrative = DocumentNarrative.objects.filter(pk=record_id).first()
    return None if narrative is None else narrative_record_hash(narrative, _subject_of(narrative))


# --- writing and signing ------------------------------------------------------------------------------


def _clean_sections(document: str, sections: dict[str, str]) -> dict[str, str]:
    """Every section of the document, stripped, line breaks as \\n; ValidationError per field otherwise."""
    unknown = set(sections) - set(section_names(document))
    if unknown:
        raise ValidationError({"__all__": f"Not a section of this document: {', '.join(sorted(unknown))}."})
    cleaned = {name: (sections.get(name) or "").replace("\r\n", "\n").replace("\r", "\n").strip() for name in
               section_names(document)}  # fmt: skip
    errors = {
        name: f"At most {MAX_SECTION_CHARS:,} characters (this is {len(text):,})."
        for name, text in cleaned.items()
        if len(text) > MAX_SECTION_CHARS
    }
    if errors:
        raise ValidationError(errors)
    if not any(cleaned.values()):
        raise ValidationError({"__all__": "Write at least one section."})
    return cleaned


def _sign(*, narrative: DocumentNarrative, subject: Subject, user: AbstractBaseUser, meaning: str, password: str):  # type: ignore[no-untyped-def]
    """Sign `narrative` inside the caller's transaction, link the signature, audit it."""
    signature = signature_sign(
        signer=user,
        password=password,
        meaning=meaning,
        record_type=RECORD_TYPE,
        record_id=narrative.pk,
        record_hash=narrative_record_hash(narrative, subject),
    )
    DocumentNarrativeSignature.objects.create(narrative=narrative, signature=signature)
    audit_record(
        actor=user,
        action="narrative.signed",
        obj=narrative,
        object_type=RECORD_TYPE,  # the signature's record type too, so both name the narrative alike
        dataset_id=narrative.dataset_id,
        after={
            "document": narrative.document,
            "subject_id": subject.pk,
            "version": narrative.version,
            "meaning": meaning,
            "signature_id": signature.pk,
            # The shape every signed event records (the auditor's event list checks it against the record now).
            "signature": {"id": signature.pk, "meaning": meaning, "record_hash": signature.record_hash},
            "printed_name": signature.printed_name,
            "record_hash": signature.record_hash,
        },
    )
    return signature


def narrative_write(
    *,
    user: AbstractBaseUser,
    document: str,
    subject: Subject,
    sections: dict[str, str],
    change_note: str = "",
    sign: bool = False,
    password: str = "",
) -> DocumentNarrative:
    """Save a new version of the document's narrative; with `sign`, sign it "authored" in the same act.

    Precondition: `user` is a model admin of the subject's dataset (the view's selector checked it).
    ValidationError per field (a section too long, none written, the password), changing nothing; a
    wrong password is still recorded (signing_attempt). The audit event holds the text's sha256.
    """
    cleaned = _clean_sections(document, sections)
    note = change_note.strip()[:500]
    # A wrong password is recorded against the document (the version it would have been is rolled back).
    with signing_attempt(user=user, object_type=document, object_id=subject.pk, dataset_id=subject.dataset_id):
        with transaction.atomic():
            _dataset_lock(subject.dataset_id)
            versions = DocumentNarrative.objects.filter(document=document, **_subject_filter(document, subject))
            number = (versions.aggregate(last=Max("version"))["last"] or 0) + 1
            try:
                with transaction.atomic():  # a savepoint: the unique key may refuse a concurrent save
                    narrative = DocumentNarrative.objects.create(
                        document=document,
                        dataset_id=subject.dataset_id,
                        version=number,
                        sections=cleaned,
                        subject_hash=subject_hash(document, subject),
                        written_by=user,
                        written_at=timezone.now(),
                        change_note=note,
                        **_subject_filter(document, subject),
                    )
            except IntegrityError as exc:
                raise ValidationError(
                    {"__all__": f"Someone saved version {number} of this text a moment ago: reload and write again."}
                ) from exc
            audit_record(
                actor=user,
                action="narrative.written",
                obj=narrative,
                object_type=RECORD_TYPE,
                dataset_id=narrative.dataset_id,
                after={
                    "document": document,
                    "subject_id": subject.pk,
                    "version": number,
                    "text_sha256": hashlib.sha256(canonical_json(cleaned)).hexdigest(),
                    "sections_written": [name for name, text in cleaned.items() if text],
                    "change_note": note,
                },
            )
            if sign:
                _sign(narrative=narrative, subject=subject, user=user, meaning=Signature.Meaning.AUTHORED,
                      password=password)  # fmt: skip
    return narrative


def narrative_sign(*, user: AbstractBaseUser, narrative: DocumentNarrative, meaning: str, password: str) -> Signature:
    """Sign a saved version: "authored" by its writer (the latest version, not yet signed so), or
    "reviewed" by another model admin (the version the document shows, once per reviewer).

    Precondition: `user` is a model admin of its dataset. ValidationError, changing nothing, when the
    rule is not met; PermissionDenied while the user may not sign at all (lockout, temporary password).
    """
    if meaning not in (Signature.Meaning.AUTHORED, Signature.Meaning.REVIEWED):
        raise ValidationError({"meaning": "Sign as author or as reviewer."})
    with signing_attempt(user=user, object_type=RECORD_TYPE, object_id=narrative.pk, dataset_id=narrative.dataset_id):
        with transaction.atomic():
            # Two signings at once (a double click, two tabs) or a signing beside a new version would both pass
            # the checks below: the dataset row (first in the lock order) makes them take turns.
            _dataset_lock(narrative.dataset_id)
            subject = _subject_of(narrative)
            signed = set(
                DocumentNarrativeSignature.objects.filter(narrative=narrative).values_list(
                    "signature__meaning", "signature__signer_id"
                )
            )
            versions = DocumentNarrative.objects.filter(
                document=narrative.document, **_subject_filter(narrative.document, subject)
            )
            if meaning == Signature.Meaning.AUTHORED:
                if narrative.written_by_id != user.pk:
                    raise ValidationError({"meaning": "Only its writer signs a version as its author."})
                if any(m == Signature.Meaning.AUTHORED for m, _ in signed):
                    raise ValidationError({"meaning": f"Version {narrative.version} is signed already."})
                if versions.filter(version__gt=narrative.version).exists():
                    raise ValidationError({"meaning": "A newer version exists: sign that one, or save this again."})
            else:
                shown = narrative_shown(versions)
                if shown is None or shown.pk != narrative.pk:
                    raise ValidationError({"meaning": "Only the version the document shows (signed) can be reviewed."})
                if narrative.written_by_id == user.pk:
                    raise ValidationError(
                        {"meaning": "Its writer cannot also be its reviewer: a second admin reviews."}
                    )
                if (Signature.Meaning.REVIEWED, user.pk) in signed:
                    raise ValidationError({"meaning": "You have reviewed this version already."})
            return _sign(narrative=narrative, subject=subject, user=user, meaning=meaning, password=password)


def _dataset_lock(dataset_id: int) -> None:
    Dataset.objects.select_for_update(no_key=True).filter(pk=dataset_id).values_list("pk", flat=True).first()


def narrative_shown(versions: Any) -> DocumentNarrative | None:
    """The latest version with an author's signature (the document's text), or None."""
    return versions.filter(signatures__signature__meaning=Signature.Meaning.AUTHORED).order_by("-version").first()


# --- reading ----------------------------------------------------------------------------------------


def narrative_can_write(user: AnyUser, dataset: Any) -> bool:
    """Whether the user may write and sign the dataset's narratives (a model admin and a member of it)."""
    return has_role(user, Role.MODEL_ADMIN) and dataset.memberships.filter(user=user).exists()


def narrative_get_for_user(
    *, user: AnyUser, pk: int, roles: tuple[Role, ...] = (Role.MODEL_ADMIN,)
) -> DocumentNarrative:
    """The narrative version, if the user holds one of `roles` in its dataset (403 otherwise, 404 if missing
    for those who read every dataset)."""
    require_role(user, *roles)
    narrative = DocumentNarrative.objects.select_related("dataset").filter(pk=pk).first()
    if narrative is None:
        raise missing_record(user, roles, "narrative")
    require_dataset_access(user, narrative.dataset, roles)
    return narrative


@dataclass(frozen=True)
class SignedBy:
    signature: Signature
    check: SignatureCheck

    def as_dict(self) -> dict[str, Any]:
        s = self.signature
        return {
            "printed_name": s.printed_name,
            "username": s.signer.get_username(),
            "meaning": s.meaning,
            "meaning_label": s.get_meaning_display(),
            "signed_at": s.signed_at,
            "record_hash": s.record_hash,
            "verification": self.check.as_dict(),
        }


def narrative_document(document: str, subject: Subject) -> dict[str, Any]:
    """The narrative part of a document, JSON-ready: the shown (signed) text with its signatures and their
    verification, the latest draft's number if newer, and the history of versions (newest first).

    Three statements however many versions: the versions, their signatures with signers, and the
    subject hash once (each signature is checked against it, not re-read per signature).
    """
    versions = list(
        DocumentNarrative.objects.filter(document=document, **_subject_filter(document, subject))
        .select_related("written_by")
        .order_by("-version")
    )
    links = (
        DocumentNarrativeSignature.objects.filter(narrative__in=[v.pk for v in versions])
        .select_related("signature__signer")
        .order_by("signature__signed_at", "pk")
    )
    by_version: dict[int, list[Signature]] = {}
    for link in links:
        by_version.setdefault(link.narrative_id, []).append(link.signature)
    shown = next(
        (v for v in versions if any(s.meaning == Signature.Meaning.AUTHORED for s in by_version.get(v.pk, []))), None
    )
    headings = {name: heading for name, heading, _ in SECTIONS[document]}
    current_subject = subject_hash(document, subject) if versions else ""

    def signed_by(version: DocumentNarrative) -> list[dict[str, Any]]:
        current = _record_hash_with(version, subject, current_subject)
        return [SignedBy(s, _check(s, current)).as_dict() for s in by_version.get(version.pk, [])]

    history = [
        {
            "id": v.pk,
            "version": v.version,
            "status": "signed" if v is shown or by_version.get(v.pk) else "draft",
            "shown": v is shown,
            "written_by": v.written_by.get_full_name() or v.written_by.get_username(),
            "written_at": v.written_at,
            "change_note": v.change_note,
            "subject_changed_since": v.subject_hash != current_subject,
            "signatures": signed_by(v),
        }
        for v in versions
    ]
    latest = versions[0] if versions else None
    return {
        "status": "signed" if shown else ("draft_only" if versions else "not_written"),
        "version": shown.version if shown else None,
        "sections": {name: shown.sections.get(name, "") for name in headings} if shown else {},
        "headings": headings,
        "signatures": signed_by(shown) if shown else [],
        "newer_draft": latest.version if latest and shown is not latest else None,
        "history": history,
    }


def _record_hash_with(narrative: DocumentNarrative, subject: Subject, current_subject: str) -> str:
    record = {
        "narrative_id": narrative.pk,
        "document": narrative.document,
        "subject_id": subject.pk,
        "version": narrative.version,
        "sections": narrative.sections,
        "subject_hash": current_subject,
    }
    return hashlib.sha256(canonical_json(record)).hexdigest()


def _check(signature: Signature, current: str) -> SignatureCheck:
    """signature_verify's answer, computed from a hash already in hand (same statuses and words)."""
    status = SignatureCheck.VERIFIED if current == signature.record_hash else SignatureCheck.CHANGED
    return SignatureCheck(status, signature.record_hash, current)


def narrative_latest(document: str, subject: Subject) -> DocumentNarrative | None:
    """The newest version, draft or signed: what the writing form starts from."""
    return (
        DocumentNarrative.objects.filter(document=document, **_subject_filter(document, subject))
        .order_by("-version")
        .first()
    )


__all__ = [
    "SECTIONS",
    "narrative_document",
    "narrative_get_for_user",
    "narrative_latest",
    "narrative_record_hash",
    "narrative_sign",
    "narrative_write",
]
