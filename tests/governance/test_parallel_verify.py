"""verify_audit --jobs N (governance/parallel_verify.py): the chain walked in several processes gives what one
walk gives, a genuine trail and a tampered one alike, the first bad event named the same way.

PostgreSQL only, and committed data (transaction=True): the walkers are forked processes with their own
connections, which see only what is committed."""

from __future__ import annotations

import pytest
from django.db import connection

from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_checkpoint_create, audit_trail_verify
from tests.governance.test_checkpoints import (
    CHECKPOINT_TABLE,
    EVENT_TABLE,
    HEAD_TABLE,
    _as_database_admin,
    _events,
    _move_head,
    _rewrite_from,
    _sql,
)

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="forked walkers need a server database"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []


@pytest.fixture
def trail() -> None:
    """45 events: 20, a checkpoint (#21), 20 more, a checkpoint (#42), 3 more."""
    _events(20)
    audit_checkpoint_create()
    _events(20)
    audit_checkpoint_create()
    _events(3)


@pytest.fixture
def database_admin(trail):  # type: ignore[no-untyped-def]
    """Triggers off for the tamper, and (they are committed here) back on afterwards for the next test."""
    _as_database_admin()
    yield
    for table, trigger in (
        (EVENT_TABLE, "append_only"),
        (CHECKPOINT_TABLE, "append_only"),
        (HEAD_TABLE, "forward_only"),
    ):
        _sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_{trigger}")


def _both() -> tuple:  # type: ignore[type-arg]
    one, three = audit_trail_verify(jobs=1), audit_trail_verify(jobs=3)
    return one, three


def test_a_genuine_trail_verifies_alike_in_three_processes(trail, monkeypatch):
    from governance import checkpoints

    walks = []
    real = checkpoints.chain_walk_parallel
    monkeypatch.setattr(checkpoints, "chain_walk_parallel", lambda **kw: walks.append(kw) or real(**kw))
    one, three = _both()
    assert [w["jobs"] for w in walks] == [3]  # the second verification really walked in processes

    assert one.ok and three.ok
    assert (three.events_checked, three.checkpoints_checked) == (one.events_checked, one.checkpoints_checked) == (45, 2)


def test_an_event_edited_in_place_is_named_alike(database_admin):
    _sql(f"UPDATE {EVENT_TABLE} SET action = 'test.forged' WHERE seq = 33")

    one, three = _both()

    assert one.chain_break.seq == three.chain_break.seq == 33
    assert three.events_checked == one.events_checked == 32


def test_a_rewrite_that_recomputes_every_later_hash_fails_the_same_checkpoint(database_admin):
    _rewrite_from(10, "rewritten")

    one, three = _both()

    assert one.chain_break is None and three.chain_break is None  # the chain itself verifies again
    assert three.problems == one.problems and one.problems  # but the signed roots no longer match


def test_events_missing_at_a_segment_boundary_are_named_alike(database_admin):
    # Three walkers over 45 events take 1-15, 16-30 and 31-45: delete the first walker's last two.
    _sql(f"DELETE FROM {EVENT_TABLE} WHERE seq IN (14, 15)")

    one, three = _both()

    assert one.chain_break.seq == three.chain_break.seq == 14
    assert "missing" in three.chain_break.reason


def test_a_deleted_tail_with_the_head_moved_back_is_caught_by_the_checkpoint_alike(database_admin):
    _sql(f"DELETE FROM {EVENT_TABLE} WHERE seq > 30")
    _move_head(30)

    one, three = _both()

    assert one.chain_break is None and three.chain_break is None
    assert three.problems == one.problems and any("deleted" in p for p in three.problems)
