"""The fast chain walk (governance/chain_walk.py) gives exactly the reference's verdict, in its words.

The reference is `verify_chain` over `audit_event_rows`. The fast path may only accept an
event the reference accepts; whatever it does not accept it hands back to the reference.
So: on awkward but genuine events (a float msgspec writes differently, control characters,
a big integer, legacy events) both accept; on every kind of tampering both name the same
event for the same reason; across batch boundaries and with the prefetch thread nothing
is skipped or seen twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from governance import chain_walk as chain_walk_module
from governance.audit import audit_record
from governance.audit_chain import GENESIS_HASH, LEGACY_SCHEME, chain_hash, event_fields, verify_chain
from governance.chain_scan import audit_event_rows
from governance.chain_walk import chain_walk
from governance.models import AuditEvent
from governance.selectors import chain_head

EVENT_TABLE = AuditEvent._meta.db_table


def _record(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=None,
                action="test.event",
                object_type="thing",
                object_id=i,
                dataset_id=None if i % 2 else 7,
                before={"n": i, "ü": 'é\n\t"q"\x1f\u2028', "nested": {"z": [1, 2.5, None, True], "a": {}}},
                # 1e-07 is "1e-7" to msgspec and "1e-07" to the standard library: the fast path
                # cannot accept it, the reference must, and the walk must not call it a break.
                after=None if i % 3 else {"small": 1e-07, "big": 12345678901234567, "neg": -0.0, "huge": 10**30},
                reason=f'reason {i} ✓\r\n, "quoted" \\ back',
            )


def _reference() -> tuple[int, object]:
    return verify_chain(audit_event_rows(), head=chain_head())


def _unlock_events() -> None:
    """Switch the append-only trigger off, as a superuser (PostgreSQL) or the file's owner (SQLite) can."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {EVENT_TABLE} DISABLE TRIGGER {EVENT_TABLE}_append_only")
        else:
            cursor.execute(f"DROP TRIGGER {EVENT_TABLE}_append_only_update")
            cursor.execute(f"DROP TRIGGER {EVENT_TABLE}_append_only_delete")


def _sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@pytest.mark.django_db
def test_awkward_genuine_events_verify_and_the_walk_agrees_with_the_reference(monkeypatch):
    monkeypatch.setattr(chain_walk_module, "BATCH", 4)  # several batches, one of them partly filled
    second_looks = []
    reference_judgement = chain_walk_module._reference_judgement
    monkeypatch.setattr(
        chain_walk_module,
        "_reference_judgement",
        lambda expected_seq, *args: second_looks.append(expected_seq) or reference_judgement(expected_seq, *args),
    )
    _record(11)
    seen = []
    result = chain_walk(head=chain_head(), observe=lambda seq, *_: seen.append(seq))
    assert result == _reference() == (11, None)
    assert seen == list(range(1, 12))
    if connection.vendor == "postgresql":
        # The fast path accepted every event but the four whose `after` holds 1e-07.
        assert second_looks == [1, 4, 7, 10]


@pytest.mark.django_db
def test_a_legacy_event_is_accepted_as_the_reference_accepts_it():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = AuditEvent(
        seq=1,
        created_at=moment,
        action="legacy.event",
        object_type="thing",
        object_id="1",
        before={"a": 1},
        after={"b": [1, "x"]},
        reason="old",
        prev_hash=GENESIS_HASH,
        hash_scheme=LEGACY_SCHEME,
    )
    event.hash = chain_hash(GENESIS_HASH, event_fields(event))
    event.save()
    assert chain_walk() == verify_chain(audit_event_rows()) == (1, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(f"UPDATE {EVENT_TABLE} SET reason = 'edited' WHERE seq = 6", id="payload edited"),
        pytest.param(f"UPDATE {EVENT_TABLE} SET actor_username = 'mallory' WHERE seq = 6", id="header edited"),
        pytest.param(
            f"UPDATE {EVENT_TABLE} SET created_at = created_at + interval '1 second' WHERE seq = 6", id="time edited"
        ),  # fmt: skip
        pytest.param(f"DELETE FROM {EVENT_TABLE} WHERE seq = 6", id="middle deleted"),
        pytest.param(f"DELETE FROM {EVENT_TABLE} WHERE seq >= 9", id="tail deleted"),
        pytest.param(f"UPDATE {EVENT_TABLE} SET prev_hash = hash WHERE seq = 6", id="link edited"),
    ],
)
def test_every_tampering_is_reported_at_the_same_event_for_the_same_reason_as_the_reference(
    tamper: str, monkeypatch: pytest.MonkeyPatch
):
    if connection.vendor != "postgresql" and "interval" in tamper:
        tamper = f"UPDATE {EVENT_TABLE} SET created_at = '2020-01-01 00:00:00' WHERE seq = 6"
    monkeypatch.setattr(chain_walk_module, "BATCH", 4)
    _record(10)
    _unlock_events()
    _sql(tamper)
    fast = chain_walk(head=chain_head())
    assert fast == _reference()
    assert fast[1] is not None
    assert fast[1].seq in (6, 9)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_prefetching_walk_sees_every_event_once(monkeypatch):
    # Not in an atomic block: batches after the first are fetched on a second thread and connection.
    monkeypatch.setattr(chain_walk_module, "BATCH", 3)
    _record(10)
    assert not connection.in_atomic_block
    seen = []
    assert chain_walk(head=chain_head(), observe=lambda seq, *_: seen.append(seq)) == (10, None)
    assert seen == list(range(1, 11))
    assert chain_walk(after_seq=4, up_to_seq=8, start=(4, AuditEvent.objects.get(seq=4).hash)) == (4, None)
