"""The hash chain behind the audit trail.

Each event's hash is sha256(prev_hash || canonical_json(fields)). Canonical JSON
is sorted keys, no whitespace, UTF-8; timestamps as ISO 8601 in UTC with
microseconds. Values are normalised through JSON *before* they are stored, so
what is hashed is exactly what the database gives back.
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
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    if head is not None and (head[0], head[1]) != (expected_seq - 1, expected_prev):
        return checked, ChainBreak(
            expected_seq,
            f"the chain ends at event #{expected_seq - 1} but its head records #{head[0]}: events are missing",
        )
    return checked, None
