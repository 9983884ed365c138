"""Reading the audit trail fast, in seq order, for the verifiers (verify_audit, checkpoints).

The verifiers need every column of every event, once, in order. Model instances
cost most of the walk: building 200,000 `AuditEvent` objects took about four
times as long as hashing them. So the walk reads plain rows (`values_list`, with
the same field converters, so a JSON payload or a timestamp comes back exactly
as the model would give it) into a named tuple that has the model's attribute
names, which is all `audit_chain.event_fields` reads.

Rows come in keyset batches (`seq > last ORDER BY seq LIMIT n`): each batch is
one short query on the primary-key order (`seq` is unique, so indexed), with no
cursor held open between batches, the same on SQLite and PostgreSQL. A row whose
stored value can no longer be converted raises from inside its batch, as the
model iterator did, and the chain walk reports it as unreadable.

On PostgreSQL the rows are read with plain SQL instead: converting a timestamptz
into a Python datetime is the slowest column by far (about 65,000 a second,
against 300,000+ for every other column), and the chain hashes the timestamp as
text anyway, so the database formats it in UTC exactly as `format_timestamp`
does and the walk hashes that string. JSON payloads arrive as their text and are
parsed with `json.loads`, which is what the model field does.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterator
from functools import cache
from typing import Any

from django.db import connection

from governance.models import AuditEvent

# The database's own rendering of format_timestamp's "%Y-%m-%dT%H:%M:%S.%fZ" in UTC.
PG_CHAIN_TIMESTAMP = "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

BATCH = 5000


@cache
def _columns() -> tuple[str, ...]:
    # attnames (actor_id, not actor): every concrete column, so a column added later is read too
    return tuple(field.attname for field in AuditEvent._meta.concrete_fields)


@cache
def _row_type() -> Any:
    return namedtuple("AuditEventRow", _columns())


def audit_event_rows(*, after_seq: int = 0, up_to_seq: int | None = None, batch: int = BATCH) -> Iterator[Any]:
    """Events with seq > after_seq (and <= up_to_seq when given), in seq order, as light named tuples.

    On PostgreSQL `created_at` is the timestamp already formatted (a str); elsewhere a datetime.
    """
    if connection.vendor == "postgresql":
        yield from _postgresql_rows(after_seq=after_seq, up_to_seq=up_to_seq, batch=batch)
        return
    columns, make = _columns(), _row_type()._make
    last = after_seq
    while True:
        rows = AuditEvent.objects.filter(seq__gt=last)
        if up_to_seq is not None:
            rows = rows.filter(seq__lte=up_to_seq)
        page = list(rows.order_by("seq").values_list(*columns)[:batch])
        if not page:
            return
        for values in page:
            yield make(values)
        if len(page) < batch:
            return
        last = page[-1][columns.index("seq")]


@cache
def _postgresql_select() -> tuple[str, tuple[int, ...]]:
    """The SELECT list in model column order, and the positions of the JSON columns."""
    expressions, json_positions = [], []
    for position, field in enumerate(AuditEvent._meta.concrete_fields):
        column = connection.ops.quote_name(field.column)
        if field.get_internal_type() == "DateTimeField" and field.attname == "created_at":
            expressions.append(PG_CHAIN_TIMESTAMP.format(column=column))
        elif field.get_internal_type() == "JSONField":
            expressions.append(f"{column}::text")
            json_positions.append(position)
        else:
            expressions.append(column)
    return ", ".join(expressions), tuple(json_positions)


def _postgresql_rows(*, after_seq: int, up_to_seq: int | None, batch: int) -> Iterator[Any]:
    select, json_positions = _postgresql_select()
    make, seq_position = _row_type()._make, _columns().index("seq")
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    bound = "" if up_to_seq is None else " AND seq <= %s"
    sql = f"SELECT {select} FROM {table} WHERE seq > %s{bound} ORDER BY seq LIMIT %s"
    last, loads = after_seq, json.loads
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last, batch] if up_to_seq is None else [last, up_to_seq, batch])
            page = cursor.fetchall()
        for values in page:
            values = list(values)
            for position in json_positions:
                if values[position] is not None:
                    values[position] = loads(values[position])
            yield make(values)
        if len(page) < batch:
            return
        last = page[-1][seq_position]
