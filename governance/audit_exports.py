"""Auditor exports (issue 10, point 9): events, signatures and checkpoints as CSV or JSONL.

What an export is, and why it is shaped so:

- **Recorded before it streams.** `audit_export_open` writes an `audit.exported` event
  (what, which format, which filters, and the upper bound it covers) in its own
  transaction and only then hands back the rows. A stream that ends after the response
  started cannot add to a transaction any more, and a record written at the end would
  be lost whenever the client hangs up; so the event says what will be handed out,
  and the bound makes that exact.
- **Bounded, so it is reproducible.** Events up to the chain head's seq at that
  moment (every event at or below it is committed: the head moves in the transaction
  that appends), signatures up to the largest id less the ids below it that were not
  there (`absent_ids`, as ranges), checkpoints up to the largest tree size. The export
  event itself lies above its own bound. The trail is append-only, so the same export
  run again later gives the same rows. Why the absent ids: on PostgreSQL a signature's
  id is drawn when it is inserted, not when its act commits, so an act still signing
  can commit id 100 after id 101 was exported; that row is left out of this export (and
  out of any rerun of it) rather than appearing in a later read of the "same" bound.
- **Streamed by key.** Rows are read in key order, EXPORT_CHUNK at a time, each page
  a fresh indexed query (`WHERE key > last AND key <= bound ORDER BY key LIMIT n`):
  no OFFSET, no long transaction holding a snapshot open for a million rows, and
  never more than one page in memory. The CSV and JSONL writers are the gold-label
  export's (models_app/export_formats.py), which neutralise formula-like CSV cells.
- **With their hashes.** Each event row carries `prev_hash` and `hash`, and its JSONL
  line holds exactly the hashed fields (timestamps as the chain writes them), so
  sha256(prev_hash || canonical JSON of the line without the two hashes) can be
  checked offline. Signatures carry the signed record's hash; checkpoints their
  root, signature, public key and key fingerprint, as a third party verifies them.
- **JSONL ends with a summary line**, `{"summary": {...}}`: the row count and the
  sha256 of every byte before it, so a truncated or edited file shows. CSV has no such
  line (it would be a row of another shape) and no header hash (headers go before the
  body): use JSONL where the file itself must be checkable.

The caller checks the role (the selectors below raise PermissionDenied for anyone
but an auditor); this module writes nothing but the export's own event.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max, QuerySet, TextField
from django.db.models.functions import Cast

from governance.audit import audit_record
from governance.audit_chain import format_timestamp
from governance.models import AuditCheckpoint, Signature
from governance.selectors import AuditFilters, audit_events_for_user, chain_head
from governance.signing import signature_checks_for
from models_app.export_formats import ExportFormat, csv_chunks, jsonl_chunks
from workflow_site.access import AnyUser, Role, require_role

EXPORTED_ACTION = "audit.exported"
EXPORT_CHUNK = 2000  # rows per keyset page: one query, and the most held in memory at once
EXPORT_FORMATS = (ExportFormat.CSV, ExportFormat.JSONL)


class AuditExportKind(StrEnum):
    EVENTS = "events"
    SIGNATURES = "signatures"
    CHECKPOINTS = "checkpoints"


EVENT_COLUMNS = [
    "seq",
    "created_at",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "dataset_id",
    "before",
    "after",
    "reason",
    "request_id",
    # Hash scheme 2 (governance/audit_chain.py) hashes the payload's digest, so a tombstone still chains.
    "hash_scheme",
    "payload_sha256",
    "tombstoned_at",
    "prev_hash",
    "hash",
]
SIGNATURE_COLUMNS = [
    "id",
    "signer_id",
    "signer",
    "printed_name",
    "meaning",
    "signed_at",
    "record_type",
    "record_id",
    "record_hash",
    # Checked as the export is written: the signed record's hash recomputed now (governance/signing.py).
    "record_hash_now",
    "check",
]
CHECKPOINT_COLUMNS = [
    "tree_size",
    "root_hash",
    "last_seq",
    "last_event_hash",
    "created_at",
    "key_fingerprint",
    "public_key",
    "signature",
]


@dataclass(frozen=True)
class AuditExport:
    """What to stream, and what its audit event recorded."""

    kind: AuditExportKind
    fmt: ExportFormat
    columns: list[str]
    rows: Iterator[dict[str, Any]]
    bound_name: str  # up_to_seq, up_to_id or up_to_tree_size
    up_to: int
    event_seq: int  # the audit.exported event's seq
    absent: list[list[int]] = field(default_factory=list)  # signatures: [first, last] id ranges left out

    @property
    def file_name(self) -> str:
        return f"loupe-audit-{self.kind}-{self.bound_name.replace('_', '-')}-{self.up_to}.{self.fmt}"


def signatures_for_user(*, user: AnyUser) -> QuerySet[Signature]:
    require_role(user, Role.AUDITOR)
    return Signature.objects.all()


def checkpoints_for_user(*, user: AnyUser) -> QuerySet[AuditCheckpoint]:
    require_role(user, Role.AUDITOR)
    return AuditCheckpoint.objects.all()


def audit_export_open(
    *, user: AbstractBaseUser, kind: AuditExportKind, fmt: ExportFormat, filters: AuditFilters
) -> AuditExport:
    """Record the export (its bound fixed now) and return its rows, to be streamed after this returns.

    `filters` narrow the events only; signatures and checkpoints are exported whole.
    Raises PermissionDenied for anyone but an auditor, before anything is recorded.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Audit exports are CSV or JSONL, not {fmt}.")
    if kind == AuditExportKind.EVENTS:
        events = audit_events_for_user(user=user, filters=filters)
    elif kind == AuditExportKind.SIGNATURES:
        signatures = signatures_for_user(user=user)
    else:
        checkpoints = checkpoints_for_user(user=user)
    absent: list[list[int]] = []
    with transaction.atomic():
        head_seq = chain_head()[0]
        after: dict[str, Any] = {"export": str(kind), "format": str(fmt)}
        if kind == AuditExportKind.EVENTS:
            bound_name, up_to = "up_to_seq", head_seq
            after["filters"] = filters.as_record()
        elif kind == AuditExportKind.SIGNATURES:
            bound_name, up_to = "up_to_id", signatures.aggregate(m=Max("pk"))["m"] or 0
            absent = _id_gaps(Signature._meta.db_table, up_to)
            after["absent_ids"] = absent
        else:
            bound_name, up_to = "up_to_tree_size", checkpoints.aggregate(m=Max("tree_size"))["m"] or 0
        after[bound_name] = up_to
        after["chain_head_seq"] = head_seq
        event = audit_record(
            actor=user,
            action=EXPORTED_ACTION,
            object_type="audittrail",
            after=after,
            reason=f"Exported the audit trail's {kind} as {str(fmt).upper()}.",
        )
    if kind == AuditExportKind.EVENTS:
        columns, rows = EVENT_COLUMNS, _event_rows(events, up_to, csv=fmt == ExportFormat.CSV)
    elif kind == AuditExportKind.SIGNATURES:
        columns, rows = SIGNATURE_COLUMNS, _signature_rows(signatures, up_to, absent)
    else:
        columns, rows = CHECKPOINT_COLUMNS, _checkpoint_rows(checkpoints, up_to)
    return AuditExport(
        kind=kind,
        fmt=fmt,
        columns=columns,
        rows=rows,
        bound_name=bound_name,
        up_to=up_to,
        event_seq=event.seq,
        absent=absent,
    )


def _id_gaps(table: str, up_to: int) -> list[list[int]]:
    """[first, last] ranges of the ids from 1 to `up_to` that `table` does not hold now: acts still in flight
    (their ids were drawn, not yet committed) and acts that rolled back. One pass over the primary key."""
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT prev + 1, id - 1 FROM (SELECT {q('id')} AS id, LAG({q('id')}, 1, 0) OVER (ORDER BY {q('id')})"
            f" AS prev FROM {q(table)} WHERE {q('id')} <= %s) steps WHERE id - prev > 1 ORDER BY id",
            [up_to],
        )
        return [[first, last] for first, last in cursor.fetchall()]


def _outside(ranges: list[list[int]]) -> Callable[[int], bool]:
    """Whether an id lies outside every one of the sorted, disjoint [first, last] `ranges`."""
    firsts = [first for first, _ in ranges]

    def check(value: int) -> bool:
        at = bisect.bisect_right(firsts, value) - 1
        return at < 0 or value > ranges[at][1]

    return check


def _by_key(
    queryset: QuerySet, *, key: str, up_to: int, fields: list[str], **expressions: Any
) -> Iterator[dict[str, Any]]:
    """Every row of `queryset` with `key` <= up_to, in key order, EXPORT_CHUNK rows per query."""
    last = -1  # a checkpoint of the empty trail has tree_size 0
    while True:
        rows = queryset.filter(**{f"{key}__gt": last, f"{key}__lte": up_to}).order_by(key)
        page = list(rows.values(*fields, **expressions)[:EXPORT_CHUNK])
        yield from page
        if len(page) < EXPORT_CHUNK:
            return
        last = page[-1][key]


def _event_rows(events: QuerySet, up_to: int, *, csv: bool) -> Iterator[dict[str, Any]]:
    if not csv:  # JSONL keeps before and after as the objects recorded (and hashed)
        for row in _by_key(events, key="seq", up_to=up_to, fields=EVENT_COLUMNS):
            row["created_at"] = format_timestamp(row["created_at"])  # as hashed
            row["tombstoned_at"] = row["tombstoned_at"] and format_timestamp(row["tombstoned_at"])
            yield row
        return
    # A CSV cell holds text: the JSON as the database writes it, not decoded and encoded again
    # (a third of the export's time).
    fields = [c for c in EVENT_COLUMNS if c not in ("before", "after")]
    as_text = {"before_text": Cast("before", TextField()), "after_text": Cast("after", TextField())}
    for row in _by_key(events, key="seq", up_to=up_to, fields=fields, **as_text):
        row["created_at"] = format_timestamp(row["created_at"])
        row["tombstoned_at"] = row["tombstoned_at"] and format_timestamp(row["tombstoned_at"])
        row["before"], row["after"] = row.pop("before_text"), row.pop("after_text")
        yield row


def _signature_rows(signatures: QuerySet, up_to: int, absent: list[list[int]]) -> Iterator[dict[str, Any]]:
    checked = ("signer", "record_hash_now", "check")
    fields = [c for c in SIGNATURE_COLUMNS if c not in checked] + ["signer__username"]
    page: list[dict[str, Any]] = []
    recorded = _outside(absent)  # a signature committed since the export was recorded stays out
    for row in _by_key(signatures, key="id", up_to=up_to, fields=fields):
        if not recorded(row["id"]):
            continue
        row["signer"] = row.pop("signer__username")
        row["signed_at"] = format_timestamp(row["signed_at"])
        page.append(row)
        if len(page) == EXPORT_CHUNK:
            yield from _checked(page)
            page = []
    yield from _checked(page)


def _checked(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each signature checked against its record now, a page at a time (batch hashers: a few queries a page)."""
    checks = signature_checks_for([SimpleNamespace(pk=row["id"], **row) for row in rows])
    for row in rows:
        check = checks[row["id"]]
        row["record_hash_now"], row["check"] = check.current_hash, check.status
        yield row


def _checkpoint_rows(checkpoints: QuerySet, up_to: int) -> Iterator[dict[str, Any]]:
    for row in _by_key(checkpoints, key="tree_size", up_to=up_to, fields=CHECKPOINT_COLUMNS):
        row["created_at"] = format_timestamp(row["created_at"])  # as signed
        yield row


def audit_export_chunks(export: AuditExport) -> Iterator[bytes]:
    """The file, a chunk at a time: CSV as is; JSONL followed by its summary line."""
    if export.fmt == ExportFormat.CSV:
        for text in csv_chunks(export.columns, export.rows):
            yield text.encode("utf-8")
        return
    digest = hashlib.sha256()
    counted = _Counted(export.rows)
    for text in jsonl_chunks(export.columns, counted):
        chunk = text.encode("utf-8")
        digest.update(chunk)
        yield chunk
    summary = {
        "export": str(export.kind),
        "rows": counted.count,
        "sha256": digest.hexdigest(),
        export.bound_name: export.up_to,
        "export_event_seq": export.event_seq,
    }
    if export.kind == AuditExportKind.SIGNATURES:
        summary["absent_ids"] = export.absent
    yield (json.dumps({"summary": summary}, sort_keys=True) + "\n").encode("utf-8")


class _Counted:
    """Passes rows through, counting them."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.count += 1
            yield row
