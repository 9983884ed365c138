"""Electronic signatures (21 CFR Part 11 §11.50, 11.70, 11.200, 11.300(d)): signing and verifying.

Signing is re-entering one's password at the moment of the act. What is signed
is a *record hash*: a sha256 over the record as the signer saw it (for a model
version: artifact, snapshot and evaluations). The Signature row keeps the
printed name, the time, the meaning and that hash.

- `signature_sign(...)` runs inside the caller's transaction, so the signature
  commits or rolls back with the act it signs. It refuses while the signer is
  locked out or their password is one somebody else set (PermissionDenied), and
  raises `WrongSignaturePassword` for a wrong password.
- A wrong password rolls the act back, yet the failed try must be recorded
  (11.300(d)). `signing_attempt(...)` wraps the caller's transaction: on
  `WrongSignaturePassword` it writes `signature.failed` in a transaction of its
  own (and, on the failure that starts a lockout, `signature.locked_out` in that
  same transaction) and turns it into a ValidationError on the password field
  that says how many tries are left.
- `signature_verify(signature)` recomputes the record's hash from the record as
  it is now and compares. Each record type registers its hash function with
  `record_hasher(record_type)`; the function takes the record id and returns the
  hash, or None when the record no longer exists.

Lockout: SIGNATURE_MAX_FAILURES wrong passwords within SIGNATURE_LOCKOUT lock
signing for the rest of that window (a sliding window over `signature.failed`
events). While locked, no password is checked, so no failure can be recorded:
the failure that brings the count to exactly the maximum is the one that starts
a lockout, and it alone writes `signature.locked_out`. Two concurrent failures
serialise on the audit chain's head row (audit_record), so the second one counts
the first and cannot also see "exactly the maximum".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_record
from governance.credentials import signing_refuse_if_password_temporary
from governance.models import AuditEvent, Signature

SIGNATURE_MAX_FAILURES = 5
SIGNATURE_LOCKOUT = timedelta(minutes=15)


class WrongSignaturePassword(Exception):
    """The signer's re-entered password did not match."""


# --- lockout ----------------------------------------------------------------------------------


def signature_recent_failures(user: AbstractBaseUser) -> int:
    since = timezone.now() - SIGNATURE_LOCKOUT
    return AuditEvent.objects.filter(actor=user, action="signature.failed", created_at__gte=since).count()


def signing_refuse_if_locked_out(user: AbstractBaseUser) -> None:
    """After repeated wrong signing passwords, signing is refused for a while (21 CFR 11.300(d))."""
    failures = signature_recent_failures(user)
    if failures >= SIGNATURE_MAX_FAILURES:
        raise PermissionDenied(
            f"{failures} wrong signing passwords in the last {SIGNATURE_LOCKOUT.seconds // 60} minutes: "
            "signing is locked for now. Ask a site admin if this was not you."
        )


def signing_refuse_if_unable(user: AbstractBaseUser) -> None:
    """PermissionDenied while `user` cannot sign at all: locked out, or a password somebody else set.

    Callers may call it early (before any lock), so a refusal costs nothing;
    signature_sign calls it again under the caller's transaction.
    """
    signing_refuse_if_locked_out(user)
    signing_refuse_if_password_temporary(user)  # a password a site admin set cannot sign


def wrong_password_message(user: AbstractBaseUser) -> str:
    """Said next to the password field: what happened, and how many tries are left before the lock."""
    left = SIGNATURE_MAX_FAILURES - signature_recent_failures(user)
    minutes = SIGNATURE_LOCKOUT.seconds // 60
    if left <= 0:
        return f"Password is not correct; nothing was signed. Signing is now locked for {minutes} minutes."
    tries = "1 try" if left == 1 else f"{left} tries"
    return f"Password is not correct; nothing was signed. {tries} left before signing is locked for {minutes} minutes."


# --- signing ----------------------------------------------------------------------------------


def signature_sign(
    *,
    signer: AbstractBaseUser,
    password: str,
    meaning: str,
    record_type: str,
    record_id: str | int,
    record_hash: str,
) -> Signature:
    """Check `signer`'s password and create their Signature over `record_hash`.

    Precondition: runs inside the transaction of the act being signed (the
    signature must not outlive an act that rolled back). Wrap that transaction
    in `signing_attempt` so a wrong password is recorded.

    Raises PermissionDenied while the signer is locked out or their password is
    temporary, WrongSignaturePassword for a wrong (or empty) password.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("signature_sign must run inside the transaction of the act it signs.")
    if meaning not in Signature.Meaning.values:
        raise ValueError(f"Unknown signature meaning {meaning!r}.")
    signing_refuse_if_unable(signer)
    if not password or not signer.check_password(password):
        raise WrongSignaturePassword
    return Signature.objects.create(
        signer=signer,
        printed_name=signer.get_full_name() or signer.get_username(),  # type: ignore[attr-defined]
        meaning=meaning,
        signed_at=timezone.now(),
        record_type=record_type,
        record_id=str(record_id),
        record_hash=record_hash,
    )


def signature_failure_record(
    *, user: AbstractBaseUser, object_type: str, object_id: str | int, dataset_id: int | None
) -> None:
    """Record a wrong signing password (and the lockout it may start), in its own transaction.

    Precondition: the act it was for has rolled back (call it outside that transaction).
    """
    with transaction.atomic():
        audit_record(
            actor=user,
            action="signature.failed",
            object_type=object_type,
            object_id=object_id,
            dataset_id=dataset_id,
            reason="wrong password when signing",
        )
        # Read after our own insert, under the chain head lock audit_record took: see the module docstring.
        failures = signature_recent_failures(user)
        if failures == SIGNATURE_MAX_FAILURES:
            minutes = SIGNATURE_LOCKOUT.seconds // 60
            audit_record(
                actor=user,
                action="signature.locked_out",
                obj=user,
                object_type="user",
                dataset_id=dataset_id,
                after={
                    "failures": failures,
                    "lockout_minutes": minutes,
                    "while_signing": {"object_type": object_type, "object_id": str(object_id)},
                },
                reason=f"{failures} wrong signing passwords within {minutes} minutes; signing locked",
            )


@contextmanager
def signing_attempt(
    *, user: AbstractBaseUser, object_type: str, object_id: str | int, dataset_id: int | None = None
) -> Iterator[None]:
    """Wrap the transaction that signs: a wrong password is recorded after it rolled back.

        with signing_attempt(user=user, object_type="promotion_request", object_id=pk, dataset_id=d):
            with transaction.atomic():
                ...
                signature_sign(...)

    Turns WrongSignaturePassword into ValidationError({"password": ...}).
    """
    try:
        yield
    except WrongSignaturePassword:
        signature_failure_record(user=user, object_type=object_type, object_id=object_id, dataset_id=dataset_id)
        raise ValidationError({"password": wrong_password_message(user)}) from None


# --- verifying --------------------------------------------------------------------------------

RecordHasher = Callable[[str], "str | None"]
_HASHERS: dict[str, RecordHasher] = {}


def record_hasher(record_type: str) -> Callable[[RecordHasher], RecordHasher]:
    """Register the function that recomputes the hash of a `record_type` record from its id (None: gone)."""

    def register(fn: RecordHasher) -> RecordHasher:
        _HASHERS[record_type] = fn
        return fn

    return register


@dataclass(frozen=True)
class SignatureCheck:
    """A signature checked against its record as it is now."""

    VERIFIED = "verified"
    CHANGED = "record_changed"
    MISSING = "record_missing"
    UNKNOWN = "unknown_record_type"

    status: str
    signed_hash: str
    current_hash: str | None

    @property
    def ok(self) -> bool:
        return self.status == self.VERIFIED

    @property
    def words(self) -> str:
        return {
            self.VERIFIED: "verified",
            self.CHANGED: "record changed since signing: hashes differ",
            self.MISSING: "the signed record no longer exists",
            self.UNKNOWN: "cannot be verified: unknown record type",
        }[self.status]

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "ok": self.ok, "current_hash": self.current_hash, "words": self.words}


def signature_verify(signature: Signature) -> SignatureCheck:
    """Recompute the signed record's hash from the record as it is now and compare."""
    hasher = _HASHERS.get(signature.record_type)
    return _compare(signature, hasher(signature.record_id) if hasher else None, known=hasher is not None)


# Optional: a record type may also register a function that hashes many records at once (ids -> hashes of
# those that exist), so a page of signatures costs a fixed number of queries (the auditor's event list).
_BATCH_HASHERS: dict[str, Callable[[list[str]], dict[str, str]]] = {}


def record_hasher_batch(
    record_type: str,
) -> Callable[[Callable[[list[str]], dict[str, str]]], Callable[[list[str]], dict[str, str]]]:
    def register(fn: Callable[[list[str]], dict[str, str]]) -> Callable[[list[str]], dict[str, str]]:
        _BATCH_HASHERS[record_type] = fn
        return fn

    return register


def signature_checks_for(signatures: Iterable[Signature]) -> dict[int, SignatureCheck]:
    """Each signature checked, by id; a record signed twice (its approval and its request) is hashed once.

    Record types with a batch hasher are hashed together (a fixed number of queries per type)."""
    signatures = list(signatures)
    checks: dict[int, SignatureCheck] = {}
    batched: dict[str, set[str]] = {}
    for signature in signatures:
        if signature.record_type in _BATCH_HASHERS:
            batched.setdefault(signature.record_type, set()).add(str(signature.record_id))
    for record_type, ids in batched.items():
        found = _BATCH_HASHERS[record_type](sorted(ids))
        for signature in signatures:
            if signature.record_type == record_type:
                current = found.get(str(signature.record_id))
                checks[signature.pk] = _compare(signature, current, known=True)
    signatures = [s for s in signatures if s.record_type not in _BATCH_HASHERS]
    hashed: dict[tuple[str, str], str | None] = {}
    for signature in signatures:
        key = (signature.record_type, signature.record_id)
        hasher = _HASHERS.get(signature.record_type)
        if hasher is not None and key not in hashed:
            hashed[key] = hasher(signature.record_id)
        checks[signature.pk] = _compare(signature, hashed.get(key), known=hasher is not None)
    return checks


def _compare(signature: Signature, current: str | None, *, known: bool) -> SignatureCheck:
    if not known:
        return SignatureCheck(SignatureCheck.UNKNOWN, signature.record_hash, None)
    if current is None:
        return SignatureCheck(SignatureCheck.MISSING, signature.record_hash, None)
    status = SignatureCheck.VERIFIED if current == signature.record_hash else SignatureCheck.CHANGED
    return SignatureCheck(status, signature.record_hash, current)
