"""Governance's public door: the only governance module annotations and models_app may import.

- `audit_record(...)`: append a state change to the hash-chained audit trail,
  inside the caller's transaction.
- `data_access_record(...)` (and `data_accesses_record` for a page of items) with a
  `ReadPurpose`: log that a user was shown an
  item's data (the read log, kept off the chain).

The import-linter contract in `.importlinter` holds this: the other apps reach
governance through this module and nothing else.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.utils import timezone

from governance.audit_chain import (
    PAYLOAD_DIGEST_SCHEME,
    canonical_json,
    chain_hash,
    event_fields,
    payload_digest,
    to_json_value,
)
from governance.models import AuditChainHead, AuditEvent, DataAccess
from workflow_site.prepared_sql import prepared_cursor
from workflow_site.request_id import current_request_id


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    dataset_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    actor_username: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Precondition: the caller holds a transaction (the event must commit or roll
    back with the change it records), so this refuses to run in autocommit.

    The chain head is locked from the statement that moves it to the caller's
    commit: every writer in the site queues there. Everything that can be done
    without it (the event's content, its canonical JSON) is done before.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records.")
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    before, after = to_json_value(before), to_json_value(after)
    event = AuditEvent(
        seq=0,
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=(actor.get_username() if actor is not None and actor.is_authenticated else actor_username),
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        dataset_id=dataset_id,
        before=before,
        after=after,
        reason=reason,
        request_id=current_request_id(),
        # The hash covers the payload's digest, so retention can later remove the payload (one more sha256).
        hash_scheme=PAYLOAD_DIGEST_SCHEME,
        payload_sha256=payload_digest(before, after, reason),
    )
    if connection.vendor == "postgresql":
        return _append_in_one_statement(event, connection)
    # SQLite takes one database-wide write lock per transaction, so writers queue there
    # anyway: lock the head, insert, move the head (seq without gaps or forks).
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(singleton=True)
    event.seq = head.seq + 1
    event.prev_hash = head.hash
    event.hash = chain_hash(event.prev_hash, event_fields(event))
    event.save()
    head.seq, head.prev_hash, head.hash = event.seq, event.prev_hash, event.hash
    head.save(update_fields=["seq", "prev_hash", "hash"])
    return event


# The hashed content is canonical JSON with sorted keys, so "seq" is its last key
# and the content is `prefix + str(seq) + "}"`, where the prefix is known before
# the head is locked. PostgreSQL hashes the locked head's hash, the prefix and the
# new seq itself, so one statement moves the head and inserts the event: the head
# is held for that one round trip and the commit. In SET, `seq` and `hash` on the
# right are the row's old values; under READ COMMITTED a second writer's UPDATE
# waits for the first to commit and then runs on the row it left, so seq stays
# gapless. RETURNING sees only new values, hence the head's prev_hash column.
# convert_to(..., 'UTF8') hashes UTF-8 bytes whatever the database's encoding.
_APPEND_SQL = """
WITH head AS (
    UPDATE {head}
    SET prev_hash = hash,
        seq = seq + 1,
        hash = encode(sha256(convert_to(hash || %s::text || (seq + 1)::text || '}}', 'UTF8')), 'hex')
    WHERE singleton
    RETURNING seq, prev_hash, hash
)
INSERT INTO {event} (seq, prev_hash, hash, {columns})
SELECT head.seq, head.prev_hash, head.hash, {values} FROM head
RETURNING {pk}, seq, prev_hash, hash
"""

_CHAINED = {"seq", "prev_hash", "hash"}
_SEQ_LAST = b',"seq":0}'


@cache
def _content_fields() -> list[Field]:
    """The event's columns that the caller fills (everything but its key and its place in the chain)."""
    return [f for f in AuditEvent._meta.concrete_fields if not f.primary_key and f.attname not in _CHAINED]


@cache
def _append_sql(alias: str) -> str:
    connection = connections[alias]
    fields = _content_fields()
    quote = connection.ops.quote_name
    # Explicit casts: parameters in a SELECT list get no type from the target columns. Text
    # is cast to `text`, not varchar(n), so a value too long still fails instead of being cut.
    casts = ["text" if f.get_internal_type() in ("CharField", "TextField") else f.db_type(connection) for f in fields]
    return _APPEND_SQL.format(
        head=quote(AuditChainHead._meta.db_table),
        event=quote(AuditEvent._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        values=", ".join(f"%s::{cast}" for cast in casts),
        pk=quote(AuditEvent._meta.pk.column),
    )


def _append_in_one_statement(event: AuditEvent, connection: BaseDatabaseWrapper) -> AuditEvent:
    content = canonical_json(event_fields(event))  # with seq=0
    if not content.endswith(_SEQ_LAST):
        # A new hashed field sorting after "seq" would make the hash computed in SQL wrong.
        raise RuntimeError('The audit hash is computed in SQL on the assumption that "seq" is the last key.')
    prefix = content[: -len(b"0}")]
    params = [prefix.decode("utf-8")] + [
        f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in _content_fields()
    ]
    with prepared_cursor(connection) as cursor:
        cursor.execute(_append_sql(connection.alias), params)
        row = cursor.fetchone()
        if row is None:
            # No head row (a new database, or tests that emptied the table): make it, then append.
            AuditChainHead.objects.using(connection.alias).bulk_create(
                [AuditChainHead(singleton=True)], ignore_conflicts=True
            )
            cursor.execute(_append_sql(connection.alias), params)
            row = cursor.fetchone()
    event.pk, event.seq, event.prev_hash, event.hash = row
    # What Python's verify_chain will compute; a mismatch must never be committed.
    if event.hash != hashlib.sha256(event.prev_hash.encode("ascii") + prefix + b"%d}" % event.seq).hexdigest():
        raise RuntimeError(f"The database hashed audit event #{event.seq} differently from the chain's definition.")
    event._state.adding = False
    event._state.db = connection.alias
    return event


# Why an item's data was shown (review card, item history, API).
ReadPurpose = DataAccess.Purpose


def data_access_record(*, user: AbstractBaseUser, item: Any, purpose: ReadPurpose, served_by: str = "") -> None:
    """Log that `user` was shown `item`'s data (21 CFR Part 11 / EU AI Act: who read what).

    `served_by` is the queue strategy that picked the item for a card, so the
    audit slice's serves are on record even when the lease expires unanswered.

    One fixed INSERT, not `DataAccess.objects.create`: every card runs it, and the
    ORM's statement building cost more CPU than the database's insert.
    """
    quote = connection.ops.quote_name
    with prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(DataAccess._meta.db_table)}"
            " (accessed_at, user_id, item_id, dataset_id, purpose, served_by, request_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                connection.ops.adapt_datetimefield_value(timezone.now()),
                user.pk,
                item.pk,
                item.dataset_id,
                str(purpose),
                served_by,
                current_request_id(),
            ],
        )


def data_accesses_record(*, user: AbstractBaseUser, items: list[Any], purpose: ReadPurpose) -> None:
    """Log that `user` was shown the data of each of `items` (a list page): one INSERT.

    Not `bulk_create`: building a model instance per row cost 12 ms for a 100-row page at a million
    items, a quarter of the list's server time. On PostgreSQL the ids go as two arrays into one
    fixed statement (prepared once per connection); a VALUES list of 600 parameters cost psycopg
    a parse of the statement on every page, and the server a new plan.
    """
    if not items:
        return
    now, request_id = connection.ops.adapt_datetimefield_value(timezone.now()), current_request_id()
    table = connection.ops.quote_name(DataAccess._meta.db_table)
    columns = "(accessed_at, user_id, item_id, dataset_id, purpose, request_id)"
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} {columns} SELECT %s, %s, u.item_id, u.dataset_id, %s, %s"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS u(item_id, dataset_id)",
                [now, user.pk, str(purpose), request_id, [i.pk for i in items], [i.dataset_id for i in items]],
            )
        return
    values = [v for item in items for v in (now, user.pk, item.pk, item.dataset_id, str(purpose), request_id)]
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(items))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} {columns} VALUES {rows}", values)
