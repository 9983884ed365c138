"""Walking the audit chain in several processes at once (`verify_audit --jobs N`, PostgreSQL).

A full verification hashes every event in Python (canonical JSON, sha256), about
10 µs of one core per event here, so one process tops out near 70,000 events a
second however fast the database is. The chain splits cleanly: a segment of
events (after_seq, up_to_seq] is checked on its own, starting from the stored hash
of event after_seq, which the segment before checks against that event's content.
Each segment also checks that it ends exactly at up_to_seq with the stored hash
there, so events missing at a segment's end are caught where they are missing.
The first break found in seq order is the trail's first break, as in one walk.

The children hand back the events' hashes (32 bytes each) so the parent can build
the Merkle roots of every checkpoint from one ordered list, as the single walk does.

Only from a management command or a script: it forks (each child opens its own
database connection), so never inside a transaction or a web request, and not on
SQLite, whose test databases live in memory.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections

from governance.audit_chain import GENESIS_HASH, ChainBreak, verify_chain
from governance.chain_scan import audit_event_rows, stored_hash_bytes
from governance.models import AuditEvent


@dataclass
class SegmentWalk:
    checked: int = 0
    chain_break: ChainBreak | None = None
    hashes: list[bytes] = field(default_factory=list)  # the stored hash of every event walked, in seq order
    recorded: dict[Any, int] = field(default_factory=dict)  # checkpoint tree_size -> seq of the event recording it
    tombstones: int = 0


def parallel_possible(jobs: int) -> bool:
    return jobs > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block


def chain_walk_parallel(*, jobs: int, head: tuple[int, str], checkpoint_action: str) -> SegmentWalk:
    """The whole chain walked in `jobs` processes; the result as one walk would give it (up to the first break)."""
    head_seq = head[0]
    size = -(-head_seq // jobs)  # ceiling: every event in one segment
    bounds = [(start, min(start + size, head_seq)) for start in range(0, head_seq, size)]
    tasks = [(after, up_to, head if up_to == head_seq else None, checkpoint_action) for after, up_to in bounds]
    connections.close_all()  # no child may share the parent's connection
    with multiprocessing.get_context("fork").Pool(len(tasks)) as pool:
        parts = pool.map(_segment, tasks)
    whole = SegmentWalk()
    for part in parts:
        whole.checked += part.checked
        whole.hashes += part.hashes[: part.checked]
        whole.recorded.update(part.recorded)
        whole.tombstones += part.tombstones
        if part.chain_break is not None:
            whole.chain_break = part.chain_break
            break
    if not tasks:  # an empty trail: only the head can be wrong
        _, whole.chain_break = verify_chain(iter(()), head=head)
    return whole


def _segment(task: tuple[int, int, tuple[int, str] | None, str]) -> SegmentWalk:
    after, up_to, head, checkpoint_action = task
    middle = head is None
    walk = SegmentWalk()
    start_hash = (
        GENESIS_HASH if after == 0 else AuditEvent.objects.filter(seq=after).values_list("hash", flat=True).first()
    )
    if start_hash is None:
        walk.chain_break = ChainBreak(after, f"event #{after} is missing")
        return walk
    if head is None:  # a middle segment must end exactly at up_to, with the hash stored there
        end_hash = _stored_hash_of(up_to)
        head = (up_to, end_hash or "")

    def stream() -> Any:
        for event in audit_event_rows(after_seq=after, up_to_seq=up_to):
            walk.hashes.append(stored_hash_bytes(event.hash))
            if event.action == checkpoint_action and isinstance(event.after, dict):
                walk.recorded[event.after.get("tree_size")] = event.seq
            if getattr(event, "tombstoned_at", None) is not None:
                walk.tombstones += 1
            yield event

    walk.checked, walk.chain_break = verify_chain(stream(), head=head, start=(after, start_hash))
    if middle and walk.chain_break is not None and "its head records" in walk.chain_break.reason:
        # Ending short of up_to in a middle segment: those events are missing (the head is checked by the last).
        walk.chain_break = ChainBreak(walk.chain_break.seq, f"event #{walk.chain_break.seq} is missing")
    connections.close_all()
    return walk


def _stored_hash_of(seq: int) -> str | None:
    return AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
