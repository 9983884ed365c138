"""The hash chain behind the audit trail.

Each event's hash is sha256(prev_hash || canonical_json(fields)). Canonical JSON
is sorted keys, no whitespace, UTF-8; timestamps as ISO 8601 in UTC with
microseconds. Values are normalised through JSON *before* they are stored, so
what is hashed is exactly what the database gives back.

Two hash schemes (AuditEvent.hash_scheme):

- 1, events written before retention existed: the fields hashed are the header
  and the payload (before, after, reason) themselves. Such an event can never
  lose its payload without breaking the chain, so retention never touches it.
- 2, every event written since: the header plus `payload_sha256`, the sha256 of
  canonical_json({before, after, reason}), stored on the row. Retention can then
  remove an expired payload (a tombstone, governance/retention.py) and the
  header still chains; while the payload is there, verification recomputes its
  digest, so editing it is caught exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS_HASH = "0" * 64


def to_json_value(value: Any) -> Any:
    """Normalise a Python value to plain JSON types (dates, decimals, UUIDs become strings).

    Numbers take the form PostgreSQL's jsonb gives back, so an event hashes the
    same when it is read again: jsonb keeps a number as an exact decimal and
    writes it without an exponent or a minus zero, so 1e16 comes back as the
    integer 10000000000000000 and -0.0 as 0.0. Left as Python floats, such
    values made a genuine event fail verification on PostgreSQL.
    """
    if value is None:
        return None
    return _as_stored(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def _as_stored(value: Any) -> Any:
    if isinstance(value, float):
        if value == 0:
            return 0.0
        if abs(value) >= 1e16 and math.isfinite(value):  # where repr turns to an exponent: a whole number
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        return {key: _as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    return value


# Built once: json.dumps with options builds a new encoder on every call, a third of the cost of hashing an event.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (the same bytes as json.dumps with those options)."""
    return _CANONICAL.encode(value).encode("utf-8")


def format_timestamp(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment  # formatted so already by the database (governance/chain_scan.py, PostgreSQL)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


LEGACY_SCHEME = 1
PAYLOAD_DIGEST_SCHEME = 2


def payload_digest(before: Any, after: Any, reason: str) -> str:
    """sha256 of an event's payload: what a scheme-2 event's hash covers in its place."""
    return hashlib.sha256(canonical_json({"after": after, "before": before, "reason": reason})).hexdigest()


def event_fields(event: Any) -> dict[str, Any]:
    """The hashed content of an AuditEvent (everything but the hashes themselves)."""
    if getattr(event, "hash_scheme", LEGACY_SCHEME) == PAYLOAD_DIGEST_SCHEME:
        # "seq" must stay the last key in sorted order (governance/audit.py computes the hash in SQL).
        return {
            "seq": event.seq,
            "created_at": format_timestamp(event.created_at),
            "actor_id": event.actor_id,
            "actor_username": event.actor_username,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "dataset_id": event.dataset_id,
            "hash_scheme": PAYLOAD_DIGEST_SCHEME,
            "payload_sha256": event.payload_sha256,
            "request_id": event.request_id,
        }
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


# What a row altered behind the ORM's back can raise while it is read or hashed:
# a timestamp that no longer parses (SQLite stores it as text and Django's
# converter gives None, or raises for an impossible date), a value of the wrong type.
_UNREADABLE = (ValueError, TypeError, AttributeError, OverflowError)


def verify_chain(
    events: Any, head: tuple[int, str] | None = None, start: tuple[int, str] = (0, GENESIS_HASH)
) -> tuple[int, ChainBreak | None]:
    """Walk events in seq order; return (events checked, first break or None).

    With `head` (the chain head's seq and hash), events deleted from the end,
    or the whole table emptied, are caught too. A row that can no longer be
    read (its stored fields altered into something the ORM cannot convert) is
    a break too, not a crash. The walk closes `events` when it stops early, so
    a database cursor behind it is released while its connection is still open.

    `start` (a seq and its hash, trusted already) lets a walk begin after it: a new
    checkpoint checks only the links made since the previous one.
    """
    iterator = iter(events)
    try:
        return _walk(iterator, head, start)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _walk(iterator: Any, head: tuple[int, str] | None, start: tuple[int, str]) -> tuple[int, ChainBreak | None]:
    expected_prev = start[1]
    expected_seq = start[0] + 1
    checked = 0
    while True:
        try:
            event = next(iterator)
        except StopIteration:
            break
        except _UNREADABLE as exc:
            # A row failed to convert before it was handed over, so its seq is not
            # known: the database driver converts a whole batch of rows at once, so
            # it is this one or one a little further on.
            return checked, ChainBreak(
                expected_seq, f"an event from #{expected_seq} on cannot be read ({exc}): a stored field was altered"
            )
        if event.seq != expected_seq:
            return checked, ChainBreak(expected_seq, f"event #{expected_seq} is missing (next found is #{event.seq})")
        if event.prev_hash != expected_prev:
            return checked, ChainBreak(event.seq, "prev_hash does not match the hash of the event before it")
        try:
            content_hash = chain_hash(event.prev_hash, event_fields(event))
        except _UNREADABLE as exc:
            return checked, ChainBreak(event.seq, f"the event's content cannot be read ({exc}): it was altered")
        if content_hash != event.hash:
            return checked, ChainBreak(event.seq, "hash does not match the event's content (it was altered)")
        payload_problem = _payload_problem(event)
        if payload_problem is not None:
            return checked, ChainBreak(event.seq, payload_problem)
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    if head is not None and (head[0], head[1]) != (expected_seq - 1, expected_prev):
        return checked, ChainBreak(
            expected_seq,
            f"the chain ends at event #{expected_seq - 1} but its head records #{head[0]}: events are missing",
        )
    return checked, None


def is_tombstone(event: Any) -> bool:
    """A scheme-2 event whose expired payload retention removed: only its header (and digest) remain."""
    return getattr(event, "tombstoned_at", None) is not None


def _payload_problem(event: Any) -> str | None:
    """For a scheme-2 event: its payload must still give the digest its hash covers, unless retention removed it."""
    if getattr(event, "hash_scheme", LEGACY_SCHEME) != PAYLOAD_DIGEST_SCHEME:
        if is_tombstone(event):
            return "it is marked as a tombstone, but its hash scheme (1) covers the payload itself"
        return None
    if is_tombstone(event) and event.before is None and event.after is None and event.reason == "":
        return None  # the header (checked above) still covers the removed payload's digest
    try:
        digest = payload_digest(event.before, event.after, event.reason)
    except _UNREADABLE as exc:
        return f"the event's payload cannot be read ({exc}): it was altered"
    if digest != event.payload_sha256:
        what = "tombstoned event's leftover payload" if is_tombstone(event) else "payload (before, after or reason)"
        return f"the {what} does not match the digest its hash covers (it was altered)"
    return None
