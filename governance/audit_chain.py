"""The hash chain behind the audit trail.

Each event's hash is sha256(prev_hash || canonical_json(fields)). Canonical JSON
is sorted keys, no whitespace, UTF-8; timestamps as ISO 8601 in UTC with
microseconds. Values are normalised through JSON *before* they are stored, so
what is hashed is exactly what the database gives back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64


def to_json_value(value: Any) -> Any:
    """Normalise a Python value to plain JSON types (dates, decimals, UUIDs become strings)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_fields(event: Any) -> dict[str, Any]:
    """The hashed content of an AuditEvent (everything but the hashes themselves)."""
    return {
        "seq": event.seq,
        "created_at": format_timestamp(event.created_at),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "dataset_id": event.dataset_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "request_id": event.request_id,
    }


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(fields)).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(events: Any, head: tuple[int, str] | None = None) -> tuple[int, ChainBreak | None]:
    """Walk events in seq order; return (events checked, first break or None).

    With `head` (the chain head's seq and hash), events deleted from the end,
    or the whole table emptied, are caught too.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in events:
        if event.seq != expected_seq:
            return checked, ChainBreak(expected_seq, f"event #{expected_seq} is missing (next found is #{event.seq})")
        if event.prev_hash != expected_prev:
            return checked, ChainBreak(event.seq, "prev_hash does not match the hash of the event before it")
        if chain_hash(event.prev_hash, event_fields(event)) != event.hash:
            return checked, ChainBreak(event.seq, "hash does not match the event's content (it was altered)")
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    if head is not None and (head[0], head[1]) != (expected_seq - 1, expected_prev):
        return checked, ChainBreak(
            expected_seq,
            f"the chain ends at event #{expected_seq - 1} but its head records #{head[0]}: events are missing",
        )
    return checked, None
