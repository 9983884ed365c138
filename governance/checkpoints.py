"""Signed Merkle checkpoints of the audit trail: made, verified, proven (issue 10, point 1).

The hash chain shows an event was altered only while the hashes after it are left
alone; whoever can write the table can recompute them and move the head. A checkpoint
signs the Merkle tree head of the first n events with a key the database does not
hold, so rewriting, deleting or truncating anything it covers shows at the next
verification, and an exported copy kept elsewhere shows it even if the checkpoint rows
go too. What no checkpoint can show: events appended after the last checkpoint and
rewritten (or deleted) before the next one; checkpoint often, and export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.audit import audit_record
from governance.audit_chain import ChainBreak, format_timestamp
from governance.chain_walk import chain_walk
from governance.checkpoint_signing import (
    ExportedCheckpoint,
    checkpoint_statement,
    key_fingerprint,
    public_key_b64,
    signature_valid,
    signing_key,
    statement_sign,
    trusted_public_keys,
)
from governance.merkle import EMPTY_ROOT, TreeBuilder
from governance.models import AuditCheckpoint, AuditEvent
from governance.selectors import chain_head
from governance.tombstone_audit import retention_run_problems, tombstone_problems

CHECKPOINT_ACTION = "audit.checkpoint_created"
VERIFIED_ACTION = "audit.verified"


class CheckpointRefused(Exception):
    """The trail as it stands cannot be signed: it no longer extends the last checkpoint."""


def _stored_hash(value: str) -> bytes:
    # A hash altered into something that is not hex still makes a leaf (its text): the
    # chain walk reports that event, and the roots simply stop matching.
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode("utf-8", "replace")


def checkpoint_statement_of(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return checkpoint_statement(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        last_seq=checkpoint.last_seq,
        last_event_hash=checkpoint.last_event_hash,
        created_at=format_timestamp(checkpoint.created_at),
        key_fingerprint=checkpoint.key_fingerprint,
    )


def checkpoint_export(checkpoint: AuditCheckpoint, *, with_leaves: bool = False) -> dict[str, Any]:
    """The document to keep outside Loupe; `with_leaves` adds the hash of every event it covers (32 bytes each).

    With the leaves, verifying against the document names the first event that differs even if every
    checkpoint in the database was deleted too; without them it says only that one of 1..tree_size does.
    The leaves come from the checkpoint rows and must give the signed root, or the export is refused.
    """
    leaves = None
    if with_leaves:
        leaves = _signed_leaves(AuditCheckpoint.objects.filter(tree_size__lte=checkpoint.tree_size), checkpoint)
        if leaves is None:
            raise CheckpointRefused(
                f"The checkpoint rows up to {checkpoint.tree_size} events do not hold every event's hash (made before"
                " they did) or no longer give its signed root: export it without the leaves."
            )
    exported = ExportedCheckpoint(
        statement=checkpoint_statement_of(checkpoint),
        signature=checkpoint.signature,
        public_key=checkpoint.public_key,
        leaves=leaves,
    )
    return exported.document()


def _signed_leaves(checkpoints: Any, target: Any) -> bytes | None:
    """The event hashes 1..target.tree_size as the stored checkpoints signed them, or None if they cannot say.

    The checkpoints' leaf_hashes, joined in order, must cover every event without a gap and give
    `target`'s root: then they are what was signed (whoever can write the table cannot forge a root).
    `target` is a stored checkpoint or an exported one (anything with tree_size and root_hash).
    """
    leaves, covered = bytearray(), 0
    for checkpoint in checkpoints.order_by("tree_size").values_list("tree_size", "leaf_hashes"):
        size, added = checkpoint
        if covered >= target.tree_size:
            break
        added = bytes(added or b"")
        if len(added) != 32 * (size - covered):
            return None  # made before checkpoints kept their leaves, or altered
        leaves += added
        covered = size
    if covered < target.tree_size:
        return None
    leaves = bytes(leaves[: 32 * target.tree_size])
    return leaves if _leaves_root(leaves) == target.root_hash else None


def _leaves_root(leaves: bytes) -> str:
    builder = TreeBuilder()
    for start in range(0, len(leaves), 32):
        builder.append(leaves[start : start + 32])
    return builder.root().hex()


def _first_difference(signed: bytes) -> str | None:
    """Compare the signed event hashes with the events now: name the first event that differs."""
    count = len(signed) // 32
    position = 0
    for seq, stored in (
        AuditEvent.objects.filter(seq__lte=count).order_by("seq").values_list("seq", "hash").iterator(chunk_size=10_000)
    ):
        position += 1
        expected = signed[32 * (position - 1) : 32 * position].hex()
        if seq != position:
            return f"event #{position} is missing (it was signed with hash {expected[:16]}…)"
        if stored != expected:
            return (
                f"the first event that differs from what was signed is #{seq}: signed with hash {expected[:16]}…,"
                f" now {stored[:16]}…"
            )
    if position < count:
        expected = signed[32 * position : 32 * position + 8].hex()
        return f"event #{position + 1} is missing (it was signed with hash {expected}…)"
    return None


def audit_checkpoint_create(
    *, actor: AbstractBaseUser | None = None, only_if_new: bool = False
) -> AuditCheckpoint | None:
    """Sign the Merkle tree head of every event committed so far, and record that in the trail.

    Refused (CheckpointRefused) when the events no longer give the previous checkpoint's
    root, or the links made since it do not verify: a checkpoint must never bless a
    rewritten trail. With `only_if_new` (the beat task), nothing is made when the only
    event since the last checkpoint is that checkpoint's own. The checkpoint's event
    is written in the same transaction, so it exists exactly when the row does; it is
    the next event, covered by the next checkpoint.
    """
    key = signing_key()
    try:
        return _checkpoint_create(key, actor=actor, only_if_new=only_if_new)
    except IntegrityError as exc:  # the unique tree_size: beat and a command signed the same head at once
        raise CheckpointRefused("Another checkpoint of the same events was made at the same moment.") from exc


def _checkpoint_create(key: Any, *, actor: AbstractBaseUser | None, only_if_new: bool) -> AuditCheckpoint | None:
    public_key = public_key_b64(key)
    with transaction.atomic():
        size, last_hash = chain_head()
        previous = AuditCheckpoint.objects.order_by("-tree_size").first()
        if only_if_new and previous is not None and size <= previous.tree_size + 1:
            return None
        if previous is not None and size < previous.tree_size:
            raise CheckpointRefused(
                f"The chain head is at event #{size}, behind the last checkpoint's #{previous.tree_size}:"
                " events were deleted. Run verify_audit."
            )
        builder, new_leaves = TreeBuilder(), bytearray()
        since = previous.tree_size if previous is not None else 0
        for seq, stored in AuditEvent.objects.filter(seq__lte=size).order_by("seq").values_list("seq", "hash"):
            if seq != builder.size + 1:
                raise CheckpointRefused(f"Event #{builder.size + 1} is missing. Run verify_audit.")
            leaf = _stored_hash(stored)
            builder.append(leaf)
            if seq > since:
                new_leaves += leaf
            if previous is not None and builder.size == previous.tree_size:
                if builder.root().hex() != previous.root_hash:
                    raise CheckpointRefused(
                        f"The events covered by the checkpoint at {previous.tree_size} events no longer give its"
                        " root: they were rewritten. Run verify_audit."
                    )
        if builder.size != size:
            raise CheckpointRefused(f"The chain head records {size} events but {builder.size} were found.")
        _check_links_since(previous, size, last_hash)
        created_at = timezone.now()
        fingerprint = key_fingerprint(public_key)
        root = builder.root().hex() if size else EMPTY_ROOT.hex()
        statement = checkpoint_statement(
            tree_size=size,
            root_hash=root,
            last_seq=size,
            last_event_hash=last_hash,
            created_at=format_timestamp(created_at),
            key_fingerprint=fingerprint,
        )
        checkpoint = AuditCheckpoint.objects.create(
            tree_size=size,
            root_hash=root,
            last_seq=size,
            last_event_hash=last_hash,
            created_at=created_at,
            public_key=public_key,
            key_fingerprint=fingerprint,
            signature=statement_sign(statement, key),
            leaf_hashes=bytes(new_leaves),
        )
        audit_record(
            actor=actor,
            action=CHECKPOINT_ACTION,
            obj=checkpoint,
            after={"tree_size": size, "root_hash": root, "key_fingerprint": fingerprint},
            reason="Signed Merkle checkpoint of the audit trail.",
        )
    return checkpoint


def _check_links_since(previous: AuditCheckpoint | None, size: int, last_hash: str) -> None:
    start = (previous.last_seq, previous.last_event_hash) if previous is not None else (0, "0" * 64)
    _, broken = chain_walk(after_seq=start[0], up_to_seq=size, head=(size, last_hash), start=start)
    if broken is not None:
        raise CheckpointRefused(f"Audit chain broken at event #{broken.seq}: {broken.reason}. Run verify_audit.")


@dataclass
class TrailVerification:
    """What verify_audit found: the chain, every stored checkpoint, any exported ones."""

    events_checked: int = 0
    chain_break: ChainBreak | None = None
    checkpoints_checked: int = 0
    last_checkpoint: AuditCheckpoint | None = None
    problems: list[str] = field(default_factory=list)  # checkpoint problems, first (oldest) first
    exported_checked: int = 0
    tombstones: int = 0  # events whose payload retention removed: their headers verified, their payloads cannot be

    @property
    def ok(self) -> bool:
        return self.chain_break is None and not self.problems


def audit_trail_verify(
    *, exported: list[ExportedCheckpoint] | None = None, progress: Callable[[int], None] | None = None
) -> TrailVerification:
    """Walk the chain once; recompute every checkpoint's root from the same events as they stream by.

    Every checkpoint (stored or exported) must carry a valid signature by a trusted key,
    and the first tree_size events must give its root. Two checkpoints whose roots both
    come out of this one stream of events are consistent (the smaller tree is a prefix
    of the larger): the walk is the consistency check, in O(n) for any number of them.
    `progress` is called with the events walked so far, every few thousand.
    """
    exported = exported or []
    checkpoints = list(AuditCheckpoint.objects.order_by("tree_size"))
    wanted = {c.tree_size for c in checkpoints} | {e.tree_size for e in exported}
    roots: dict[int, str] = {0: EMPTY_ROOT.hex()}
    recorded: dict[int, int] = {}  # tree_size -> seq of the event that recorded a checkpoint
    builder = TreeBuilder()

    def observe(seq: int, event_hash: str, action: str, after: Callable[[], Any], tombstoned: bool) -> None:
        builder.append(_stored_hash(event_hash))
        if builder.size in wanted:
            roots[builder.size] = builder.root().hex()
        if action == CHECKPOINT_ACTION and isinstance(document := after(), dict):
            recorded[document.get("tree_size")] = seq
        if tombstoned:
            result.tombstones += 1

    located: list[str] = []  # the first rewritten event is named once, at the oldest checkpoint that shows it

    def locate(checkpoint: Any) -> Callable[[], bytes | None]:
        """The signed event hashes behind a checkpoint whose root no longer matches (asked only then)."""

        def signed() -> bytes | None:
            if located:
                return None
            located.append(str(checkpoint.tree_size))
            leaves = getattr(checkpoint, "leaves", None)  # an exported document may carry its own
            if leaves is not None and _leaves_root(leaves) == checkpoint.root_hash:
                return leaves
            return _signed_leaves(AuditCheckpoint.objects.all(), checkpoint)

        return signed

    result = TrailVerification()
    result.events_checked, result.chain_break = chain_walk(head=chain_head(), observe=observe, progress=progress)
    verified_up_to = result.events_checked  # roots beyond a chain break are not judged
    broken = result.chain_break is not None
    trusted = trusted_public_keys()
    result.last_checkpoint = checkpoints[-1] if checkpoints else None
    previous: AuditCheckpoint | None = None
    for checkpoint in checkpoints:
        name = f"checkpoint #{checkpoint.pk} ({checkpoint.tree_size} events, {format_timestamp(checkpoint.created_at)})"
        problem = _signature_problem(
            checkpoint_statement_of(checkpoint), checkpoint.signature, checkpoint.public_key, trusted
        )
        if problem is None and previous is not None and checkpoint.created_at < previous.created_at:
            problem = f"it is dated before checkpoint #{previous.pk}, which covers fewer events"
        if problem is None:
            problem = _root_problem(
                checkpoint.tree_size,
                checkpoint.root_hash,
                roots,
                verified_up_to,
                previous,
                chain_broken=broken,
                signed_leaves=locate(checkpoint),
            )
        if problem is not None:
            result.problems.append(f"{name}: {problem}")
        result.checkpoints_checked += 1
        previous = checkpoint
    stored_sizes = {c.tree_size for c in checkpoints}
    for size, seq in sorted(recorded.items(), key=lambda pair: pair[1]):
        if size not in stored_sizes and seq <= verified_up_to:
            result.problems.append(
                f"the checkpoint at {size} events recorded by event #{seq} is missing from the checkpoint table"
                " (deleted)"
            )
    if result.tombstones:
        # The chain verifies after any payload removal (hash scheme 2): each one must be retention's own.
        result.problems += tombstone_problems(up_to_seq=verified_up_to)
    # Every retention run, tombstones or not (one may have emptied items during a hold): justified by the trail?
    result.problems += retention_run_problems(up_to_seq=verified_up_to)
    for document in exported:
        name = f"exported checkpoint ({document.tree_size} events, {document.statement.get('created_at')})"
        problem = _signature_problem(document.statement, document.signature, document.public_key, trusted)
        if problem is None:
            problem = _root_problem(
                document.tree_size,
                document.root_hash,
                roots,
                verified_up_to,
                None,
                chain_broken=broken,
                signed_leaves=locate(document),
            )
        if problem is not None:
            result.problems.append(f"{name}: {problem}")
        result.exported_checked += 1
    return result


def _signature_problem(statement: dict[str, Any], signature: str, public_key: str, trusted: set[str]) -> str | None:
    if key_fingerprint(public_key) != statement.get("key_fingerprint"):
        return "its key fingerprint does not match its public key"
    if not signature_valid(statement, signature=signature, public_key=public_key):
        return "its signature does not verify (the checkpoint was altered or forged)"
    if public_key not in trusted:
        return f"it is signed by key {statement.get('key_fingerprint')}, which is not a trusted audit key"
    return None


def _root_problem(
    size: int,
    root_hash: str,
    roots: dict[int, str],
    verified_up_to: int,
    previous: AuditCheckpoint | None,
    *,
    chain_broken: bool,
    signed_leaves: Callable[[], bytes | None] | None = None,
) -> str | None:
    if size > verified_up_to:
        if chain_broken:
            return "not checked: the chain breaks before its last event"
        return (
            f"it covers {size} events but the trail has only {verified_up_to}: events it signed were deleted,"
            f" the first of them event #{verified_up_to + 1} (and the chain head moved back)"
        )
    if roots[size] != root_hash:
        since = f" after event #{previous.tree_size} (the checkpoint before still matches)" if previous else ""
        leaves = signed_leaves() if signed_leaves is not None else None
        located = f"; {difference}" if leaves and (difference := _first_difference(leaves)) else ""
        return (
            f"the events 1..{size} no longer give its signed root: an event{since} up to #{size} was rewritten"
            f" and the later hashes recomputed{located}"
        )
    return None


def audit_verification_record(*, result: TrailVerification, actor: AbstractBaseUser | None = None) -> None:
    """Log that the trail was verified, and what was found, so every auditor page can say when."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=VERIFIED_ACTION,
            object_type="audittrail",
            after={
                "ok": result.ok,
                "events": result.events_checked,
                "checkpoints": result.checkpoints_checked,
                "first_break": result.chain_break.seq if result.chain_break else None,
                "first_problem": result.problems[0] if result.problems else None,
                "tombstones": result.tombstones,
            },
        )


@dataclass(frozen=True)
class IntegrityStatus:
    """The line every auditor page shows: the last checkpoint and the last verification."""

    checkpoint: AuditCheckpoint | None
    signature_ok: bool
    verified_at: datetime | None
    verified_ok: bool | None


def audit_integrity_status() -> IntegrityStatus:
    """Two indexed queries whatever the size of the trail, and one signature check."""
    checkpoint = AuditCheckpoint.objects.order_by("-tree_size").first()
    verified = (
        AuditEvent.objects.filter(action=VERIFIED_ACTION).order_by("-seq").values_list("created_at", "after").first()
    )
    signature_ok = checkpoint is not None and (
        _signature_problem(
            checkpoint_statement_of(checkpoint), checkpoint.signature, checkpoint.public_key, trusted_public_keys()
        )
        is None
    )
    return IntegrityStatus(
        checkpoint=checkpoint,
        signature_ok=signature_ok,
        verified_at=verified[0] if verified else None,
        verified_ok=bool(verified[1].get("ok")) if verified and isinstance(verified[1], dict) else None,
    )
