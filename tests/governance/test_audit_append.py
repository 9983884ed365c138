"""Appending to the audit chain: one statement on PostgreSQL, hashed there exactly as Python hashes (issue 7).

On PostgreSQL `audit_record` moves the chain head and inserts the event in one
statement that computes the new hash in SQL, so these tests hold that what
PostgreSQL computed is what `verify_chain` recomputes in Python, whatever the
content; that the head row is made when it is missing; and that concurrent
writers still leave one gapless chain. SQLite keeps the ORM path, and the tests
that are not about PostgreSQL run there too.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

import governance.audit
from governance.audit import audit_record
from governance.audit_chain import GENESIS_HASH, chain_hash, event_fields, to_json_value, verify_chain
from governance.models import AuditChainHead, AuditEvent
from governance.selectors import chain_head
from workflow_site.sqlite_guards import flush_bypass

ON_POSTGRES = connection.vendor == "postgresql"
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="the one-statement append, and row locks that let writers interleave, are PostgreSQL's"
)

# Content that could hash differently in SQL than in Python if anything on the way
# re-encoded, re-escaped or re-quoted it: non-ASCII (two-, three- and four-byte
# UTF-8), quotes, backslashes, control characters JSON escapes as \uXXXX, text that
# looks like an escape, placeholders, SQL, braces, and a "seq" of its own.
AWKWARD = [
    "Ünïcödé, 漢字, emoji 🧪, Ω",
    "double \"quotes\" and 'single' ones",
    "back\\slash, \\\\two, a trailing one \\",
    "a literal \\u0000 and \\n, not escapes",
    "control \x01 \x07 \x1f, tab\tnewline\nreturn\r",
    "line and paragraph separators \u2028 \u2029, BOM \ufeff, zero-width \u200b",
    "placeholders %s %(prefix)s %% $1 ? :name",
    "'); DROP TABLE governance_auditevent; --",
    '} "seq":0} {',
]


def _remove_the_head_row() -> None:
    """As a new database has it: no head row. The head refuses DELETE (governance 0017), so this goes
    around the trigger as the test flush does: replica role on PostgreSQL, the flush bypass on SQLite."""
    if not ON_POSTGRES:
        with flush_bypass():
            AuditChainHead.objects.all().delete()
        return
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            AuditChainHead.objects.all().delete()
        finally:
            cursor.execute("RESET session_replication_role")


def _append_awkward(text: str, n: int) -> AuditEvent:
    return audit_record(
        actor=None,
        actor_username=f'usér {n} "{text[:20]}"'[:150],
        action="test.awkward",
        object_type="item",
        object_id=f"ïd-{n}",
        before={"text": text, f"key {text}": [n, 1.5, 1e-7, 2**60, True, None], "seq": n},
        after={"nested": {"text": text, "list": [text, {"seq": 0}]}, "seq": 0},
        reason=text,
    )


def _verified() -> int:
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"), head=chain_head())
    assert broken is None, broken
    return checked


def test_hashes_made_by_the_database_equal_pythons_for_awkward_content(db):
    with transaction.atomic():
        events = [_append_awkward(text, n) for n, text in enumerate(AWKWARD)]

    assert _verified() == AuditEvent.objects.count()
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        assert (stored.seq, stored.prev_hash, stored.hash) == (event.seq, event.prev_hash, event.hash)
        assert chain_hash(stored.prev_hash, event_fields(stored)) == stored.hash
        assert stored.reason == event.reason
        assert stored.before == event.before and stored.after == event.after
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(AWKWARD)))


def test_the_returned_event_is_a_saved_instance_with_its_place_in_the_chain(db):
    with transaction.atomic():
        first = audit_record(actor=None, action="test.one", after={"n": 1})
        second = audit_record(actor=None, action="test.two", before={"n": 1}, after={"n": 2})

    assert second.pk is not None and not second._state.adding
    assert AuditEvent.objects.get(pk=second.pk).seq == second.seq == first.seq + 1
    assert second.prev_hash == first.hash
    assert chain_head() == (second.seq, second.hash)
    assert AuditChainHead.objects.get().prev_hash == first.hash
    with pytest.raises(ValueError, match="append-only"):
        second.save()


@postgres_only
def test_before_and_after_are_stored_as_the_orm_would_store_them(db):
    value = {"text": AWKWARD[0] + AWKWARD[4], "when": "2026-01-01T00:00:00Z", "n": [1, 2.5, None]}
    with transaction.atomic():
        appended = audit_record(actor=None, action="test.json", before=value, after=None)
        by_orm = AuditEvent(
            seq=10**9, created_at=appended.created_at, action="test.json", before=to_json_value(value), after=None
        )
        by_orm.prev_hash = by_orm.hash = "f" * 64
        by_orm.save()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT before::text, after IS NULL FROM governance_auditevent WHERE id IN (%s, %s) ORDER BY seq",
            [appended.pk, by_orm.pk],
        )
        rows = cursor.fetchall()
    assert rows[0] == rows[1]
    assert rows[0][1] is True  # None is SQL NULL, as the ORM stores it, not JSON null


@postgres_only
def test_appending_is_one_statement_on_postgresql(db):
    with transaction.atomic():
        audit_record(actor=None, action="test.warm")  # the head row exists from here on
        with CaptureQueriesContext(connection) as queries:
            audit_record(actor=None, action="test.one_statement", after={"n": 1})

    assert len(queries) == 1
    assert "governance_auditchainhead" in queries[0]["sql"] and "INSERT INTO" in queries[0]["sql"]


def test_the_head_row_is_made_when_it_is_missing(db):
    _remove_the_head_row()

    with transaction.atomic():
        first = audit_record(actor=None, action="test.first", after={"n": 1})
        second = audit_record(actor=None, action="test.second", after={"n": 2})

    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert AuditChainHead.objects.count() == 1
    assert chain_head() == (2, second.hash)
    assert _verified() == 2


@postgres_only
def test_a_rolled_back_append_leaves_no_gap(db):
    with transaction.atomic():
        before = audit_record(actor=None, action="test.kept")
    with pytest.raises(RuntimeError, match="undone"), transaction.atomic():
        audit_record(actor=None, action="test.undone")
        raise RuntimeError("undone")
    # PostgreSQL refuses NUL in text and in jsonb: the statement fails, and the head with it.
    with pytest.raises((DataError, ValueError)), transaction.atomic():
        audit_record(actor=None, action="test.nul", reason="a \x00 byte")
    with transaction.atomic():
        after = audit_record(actor=None, action="test.kept")

    assert after.seq == before.seq + 1 and after.prev_hash == before.hash
    assert _verified() == AuditEvent.objects.count()


@postgres_only
def test_a_hashed_field_sorting_after_seq_is_refused_not_hashed_wrongly(db, monkeypatch):
    def with_a_late_field(event: Any) -> dict[str, Any]:
        return {**event_fields(event), "signature": ""}

    monkeypatch.setattr(governance.audit, "event_fields", with_a_late_field)

    with pytest.raises(RuntimeError, match='"seq" is the last key'), transaction.atomic():
        audit_record(actor=None, action="test.late_field")
    assert not AuditEvent.objects.filter(action="test.late_field").exists()


@postgres_only
def test_concurrent_appends_leave_one_verified_chain_even_from_no_head_row(transactional_db):
    """Eight writers at once, each rolling back every third event, starting with no head row at all."""
    _remove_the_head_row()
    threads_n, events_each = 8, 24
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(events_each):
                try:
                    with transaction.atomic():
                        _append_awkward(AWKWARD[(n + i) % len(AWKWARD)], n * 1000 + i)
                        if i % 3 == 2:
                            raise LookupError("rolled back on purpose")
                except LookupError:
                    pass
        except BaseException as exc:  # report any failure to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    kept = threads_n * (events_each - events_each // 3)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, kept + 1))
    assert AuditChainHead.objects.count() == 1
    for n in range(threads_n):
        mine = [e.before["seq"] % 1000 for e in events if e.before["seq"] // 1000 == n]
        assert mine == [i for i in range(events_each) if i % 3 != 2]
    assert _verified() == kept
