"""Inclusion and consistency proofs of the audit trail, as JSON an auditor can check without the table.

An inclusion proof shows one event is among the first n (so in a checkpoint of size n);
a consistency proof shows the trail of m events is a prefix of the trail of n (an older
checkpoint is extended, not rewritten, by a later one). `proof_document_verify` checks
either with nothing but the document: the RFC 9162 algorithms in governance/merkle.py.
"""

from __future__ import annotations

from typing import Any

from governance import merkle
from governance.models import AuditCheckpoint, AuditEvent


def _hashes(tree_size: int) -> list[bytes]:
    hashes = [
        bytes.fromhex(h)
        for h in AuditEvent.objects.filter(seq__lte=tree_size).order_by("seq").values_list("hash", flat=True)
    ]
    if len(hashes) != tree_size:
        raise ValueError(f"tree size {tree_size} is larger than the trail ({len(hashes)} events).")
    return hashes


def _checkpoint_note(tree_size: int) -> dict[str, Any] | None:
    found = AuditCheckpoint.objects.filter(tree_size=tree_size).values("pk", "root_hash", "key_fingerprint").first()
    return dict(found) if found else None


def audit_inclusion_proof(*, seq: int, tree_size: int) -> dict[str, Any]:
    if seq < 1 or seq > tree_size:
        raise ValueError(f"event #{seq} is not among the first {tree_size} events (seq runs from 1).")
    hashes = _hashes(tree_size)
    return {
        "kind": "inclusion",
        "tree_algorithm": merkle.TREE_ALGORITHM,
        "seq": seq,
        "leaf_index": seq - 1,
        "event_hash": hashes[seq - 1].hex(),
        "tree_size": tree_size,
        "root_hash": merkle.tree_root(hashes).hex(),
        "proof": [p.hex() for p in merkle.inclusion_proof(hashes, seq - 1, tree_size)],
        "checkpoint": _checkpoint_note(tree_size),
    }


def audit_consistency_proof(*, first_size: int, second_size: int) -> dict[str, Any]:
    if not 0 <= first_size <= second_size:
        raise ValueError(f"--from {first_size} must be between 0 and --to {second_size}.")
    hashes = _hashes(second_size)
    return {
        "kind": "consistency",
        "tree_algorithm": merkle.TREE_ALGORITHM,
        "first_size": first_size,
        "first_root": merkle.tree_root(hashes, first_size).hex(),
        "second_size": second_size,
        "second_root": merkle.tree_root(hashes).hex(),
        "proof": [p.hex() for p in merkle.consistency_proof(hashes, first_size, second_size)],
        "first_checkpoint": _checkpoint_note(first_size),
        "second_checkpoint": _checkpoint_note(second_size),
    }


def proof_document_verify(document: dict[str, Any]) -> bool:
    """Check a proof printed by audit_proof (no database): True when it proves what it says.

    Compare its roots with a checkpoint you hold: the proof only shows consistency with the roots it names.
    """
    try:
        proof = [bytes.fromhex(p) for p in document["proof"]]
        if document.get("kind") == "inclusion":
            return merkle.verify_inclusion(
                entry=bytes.fromhex(document["event_hash"]),
                index=int(document["leaf_index"]),
                tree_size=int(document["tree_size"]),
                proof=proof,
                root=bytes.fromhex(document["root_hash"]),
            )
        if document.get("kind") == "consistency":
            return merkle.verify_consistency(
                first_size=int(document["first_size"]),
                second_size=int(document["second_size"]),
                first_root=bytes.fromhex(document["first_root"]),
                second_root=bytes.fromhex(document["second_root"]),
                proof=proof,
            )
    except (KeyError, TypeError, ValueError):
        return False
    return False
