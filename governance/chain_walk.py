"""Walking the audit chain fast: plain batches on PostgreSQL, a checked fast path, the reference on doubt.

`governance/audit_chain.py` is the definition of a valid chain (`verify_chain`,
fed by `chain_scan.audit_event_rows`). It checks about 50,000 events a second,
and issue 10 asks verification to reach 200,000: most of the time went to
psycopg building a Python row per event, then json parsing and re-encoding each
payload with the standard library.

On PostgreSQL this module walks the same events another way:

- Each keyset batch of BATCH events comes back as rows of columns the driver
  converts cheaply: the timestamp already formatted by the database as the chain
  hashes it, the payloads as JSON text, parsed by msgspec as each event is
  judged. Outside a transaction the next batch is fetched on a second connection
  while this one is judged. (Each batch was first one JSON document, `json_agg`,
  parsed in one call: building it cost the database 8–9 µs an event, against
  3.5–4 µs for plain rows with the driver's conversion included, and parsing it
  cost Python 2.75 µs more.)
- Each event's hashed fields and its payload are encoded with msgspec (sorted
  keys, compact, UTF-8: the same bytes as `canonical_json` for every value the
  trail holds, about six times faster).

The fast path only ever *accepts*: an event whose link, hash or payload digest
does not come out right (or whose hash scheme is the legacy one) is read again
through `chain_scan` and judged by `verify_chain` itself, from the last event the
walk trusted. So a value msgspec writes differently from the standard library
(1e-07 is `1e-7` to msgspec) costs a second look at that event, never a false
alarm, and every break is reported in the reference's own words.

`observe`, when given, is called with every event the walk accepted, in seq order
(seq, hash, action, a function that returns its `after`, tombstoned or not): the
checkpoint verifier feeds its Merkle tree from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from django.db import connection

from governance.audit_chain import GENESIS_HASH, PAYLOAD_DIGEST_SCHEME, ChainBreak, verify_chain
from governance.chain_scan import PG_CHAIN_TIMESTAMP, audit_event_rows
from governance.models import AuditEvent

Observer = Callable[[int, str, str, Callable[[], Any], bool], None]
Progress = Callable[[int], None]

# An event's fields, in this order, in each batch's rows: first the hashed header of a scheme-2
# event in its canonical (sorted) key order, so that _Header(*row[:11]) is that header.
_COLUMNS = (
    "action",
    "actor_id",
    "actor_username",
    "created_at",
    "dataset_id",
    "hash_scheme",
    "object_id",
    "object_type",
    "payload_sha256",
    "request_id",
    "seq",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
    "tombstoned_at",
)
_SEQ, _BEFORE, _AFTER, _REASON, _PREV_HASH, _HASH, _TOMBSTONED = range(10, 17)
_ACTION, _SCHEME, _PAYLOAD_SHA256 = 0, 5, 8


class _Header(msgspec.Struct):
    """A scheme-2 event's hashed fields (audit_chain.event_fields), fields in sorted order: msgspec
    encodes a struct's fields in order, so this encodes as the canonical JSON object, faster than a dict."""

    action: str
    actor_id: int | None
    actor_username: str
    created_at: str
    dataset_id: int | None
    hash_scheme: int
    object_id: str
    object_type: str
    payload_sha256: str
    request_id: str
    seq: int


class _Payload(msgspec.Struct):
    after: Any
    before: Any
    reason: str


_ENCODE = msgspec.json.Encoder(order="sorted").encode
_DECODE = msgspec.json.Decoder().decode

# Events per query: a batch is held in memory (a few MB) while it is judged.
BATCH = 10_000


def chain_walk(
    *,
    after_seq: int = 0,
    up_to_seq: int | None = None,
    start: tuple[int, str] | None = None,
    head: tuple[int, str] | None = None,
    observe: Observer | None = None,
    progress: Progress | None = None,
) -> tuple[int, ChainBreak | None]:
    """Verify events after_seq+1 .. up_to_seq (or the end): (events checked, first break or None).

    `start` is the trusted (seq, hash) the walk continues from (genesis when after_seq is 0);
    `head`, as in `verify_chain`, catches events missing from the end. `progress`, when given,
    is called with the number of events walked so far, every BATCH events.
    """
    start = start if start is not None else (after_seq, GENESIS_HASH)
    if connection.vendor != "postgresql":
        rows = _observed(audit_event_rows(after_seq=after_seq, up_to_seq=up_to_seq), observe, progress)
        return verify_chain(rows, head, start)
    return _postgresql_walk(
        after_seq=after_seq, up_to_seq=up_to_seq, start=start, head=head, observe=observe, progress=progress
    )


def _observed(rows: Iterator[Any], observe: Observer | None, progress: Progress | None = None) -> Iterator[Any]:
    if observe is None and progress is None:
        yield from rows
        return
    for walked, row in enumerate(rows, start=1):
        if observe is not None:
            observe(row.seq, row.hash, row.action, lambda row=row: row.after, row.tombstoned_at is not None)
        if progress is not None and walked % BATCH == 0:
            progress(walked)
        yield row


def _postgresql_walk(
    *,
    after_seq: int,
    up_to_seq: int | None,
    start: tuple[int, str],
    head: tuple[int, str] | None,
    observe: Any,
    progress: Progress | None = None,
) -> tuple[int, ChainBreak | None]:
    expected_seq, expected_prev = start[0] + 1, start[1]
    checked = 0
    for rows in _batches(after_seq=after_seq, up_to_seq=up_to_seq):
        for row in rows:
            seq, hash_ = row[_SEQ], row[_HASH]
            if not (seq == expected_seq and row[_PREV_HASH] == expected_prev and _accepted(row)):
                broken = _reference_judgement(expected_seq, expected_prev, seq)
                if broken is not None:
                    return checked, broken
            if observe is not None:
                observe(seq, hash_, row[_ACTION], lambda text=row[_AFTER]: _payload_value(text), row[_TOMBSTONED])
            expected_seq, expected_prev = seq + 1, hash_
            checked += 1
        if progress is not None:
            progress(checked)
    if head is not None and (head[0], head[1]) != (expected_seq - 1, expected_prev):
        # The reference's own check and words, on an empty remainder.
        return checked, verify_chain(iter(()), head, (expected_seq - 1, expected_prev))[1]
    return checked, None


def _batches(*, after_seq: int, up_to_seq: int | None) -> Iterator[list[tuple[Any, ...]]]:
    """Keyset batches of events; outside a transaction, the next one is fetched while this one is judged.

    The prefetch runs on a thread with its own connection, so the database builds batch k+1
    (about as long as judging batch k takes) on the other core. Inside a transaction a second
    connection would not see the transaction's own events, so there it fetches in turn.
    """
    if connection.in_atomic_block:
        rows = _batch(after_seq=after_seq, up_to_seq=up_to_seq)
        while rows:
            yield rows
            if len(rows) < BATCH:
                return
            rows = _batch(after_seq=rows[-1][_SEQ], up_to_seq=up_to_seq)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-walk") as prefetcher:
        try:
            rows = _batch(after_seq=after_seq, up_to_seq=up_to_seq)
            while rows:
                ahead = None
                if len(rows) == BATCH:
                    ahead = prefetcher.submit(_batch, after_seq=rows[-1][_SEQ], up_to_seq=up_to_seq)
                yield rows
                if ahead is None:
                    return
                rows = ahead.result()
        finally:
            prefetcher.submit(lambda: connection.close())  # looked up in the thread: its own connection


def _batch(*, after_seq: int, up_to_seq: int | None) -> list[tuple[Any, ...]]:
    """The next BATCH events after after_seq, each a tuple of its _COLUMNS (the payloads as JSON text)."""
    params = [after_seq, BATCH] if up_to_seq is None else [after_seq, up_to_seq, BATCH]
    with connection.cursor() as cursor:
        cursor.execute(_batch_sql(up_to_seq), params)
        return cursor.fetchall()


def _payload_value(text: str | None) -> Any:
    """A payload column's value from its JSON text (None for SQL NULL, as for JSON null)."""
    return None if text is None else _DECODE(text)


def _accepted(row: tuple[Any, ...]) -> bool:
    """The fast path's verdict: True only when the event's hash and payload digest come out exactly."""
    if row[_TOMBSTONED]:
        return False  # rare: the reference judges a tombstone and whatever payload is left on it
    sha256 = hashlib.sha256
    try:
        after, before = _payload_value(row[_AFTER]), _payload_value(row[_BEFORE])
        payload = _ENCODE(_Payload(after, before, row[_REASON]))
        if row[_SCHEME] == PAYLOAD_DIGEST_SCHEME:
            if sha256(payload).hexdigest() != row[_PAYLOAD_SHA256]:
                return False
            header = _ENCODE(_Header(*row[:11]))
        else:  # the legacy scheme hashes the payload itself, and has neither scheme nor digest
            fields = dict(zip(_COLUMNS[:14], (*row[:11], before, after, row[_REASON]), strict=True))
            del fields["hash_scheme"], fields["payload_sha256"]
            header = _ENCODE(fields)
        return sha256(row[_PREV_HASH].encode() + header).hexdigest() == row[_HASH]
    except (msgspec.EncodeError, msgspec.DecodeError, OverflowError, TypeError):
        return False


def _reference_judgement(expected_seq: int, expected_prev: str, seq: int) -> ChainBreak | None:
    """`verify_chain`'s verdict on the events from expected_seq up to this row's seq (one, or a gap then it)."""
    rows = audit_event_rows(after_seq=expected_seq - 1, up_to_seq=max(seq, expected_seq))
    return verify_chain(rows, None, (expected_seq - 1, expected_prev))[1]


def _batch_sql(up_to_seq: int | None) -> str:
    quote = connection.ops.quote_name
    expressions = []
    for name in _COLUMNS:
        column = quote(AuditEvent._meta.get_field(name).column)
        if name == "created_at":
            # As the chain hashes it (format_timestamp): a datetime from the driver cost more than the rest.
            expressions.append(PG_CHAIN_TIMESTAMP.format(column=column))
        elif name == "tombstoned_at":
            expressions.append(f"{column} IS NOT NULL")
        elif name in ("before", "after"):
            expressions.append(f"{column}::text")  # parsed by msgspec as the event is judged
        else:
            expressions.append(column)
    bound = "" if up_to_seq is None else " AND seq <= %s"
    table = quote(AuditEvent._meta.db_table)
    return f"SELECT {', '.join(expressions)} FROM {table} WHERE seq > %s{bound} ORDER BY seq LIMIT %s"
