"""SQLite's append-only triggers: they refuse changes, fail closed, and still let the test flush through.

The refusals themselves (raw UPDATE and DELETE of reviews, audit events and
read records) are tested on both databases in
tests/annotations/test_review_immutability_in_database.py and
tests/governance/test_audit.py; this file covers what is SQLite's own: the
triggers' presence after all migrations, the ``loupe_append_only()`` switch
and the flush bypass in tests/sqlite_flush.py.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.backends.sqlite3.operations import DatabaseOperations
from django.urls import reverse

from annotations.models import Item, LabelClass, Review
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent, DataAccess
from tests import sqlite_flush
from tests.conftest import login, synthetic_rows
from workflow_site.sqlite_guards import append_only_enforced, flush_bypass

ON_SQLITE = connection.vendor == "sqlite"
sqlite_only = pytest.mark.skipif(not ON_SQLITE, reason="SQLite's own triggers and flush bypass")

TRIGGERS = {
    "annotations_review_immutable_update": "annotations_review",
    "annotations_review_immutable_delete": "annotations_review",
    "governance_auditevent_append_only_update": "governance_auditevent",
    "governance_auditevent_append_only_delete": "governance_auditevent",
    "governance_dataaccess_append_only_update": "governance_dataaccess",
    "governance_dataaccess_append_only_delete": "governance_dataaccess",
    "governance_auditchainhead_forward_only_update": "governance_auditchainhead",
    "governance_auditchainhead_forward_only_delete": "governance_auditchainhead",
}
GUARDED_TABLES = sorted(set(TRIGGERS.values()))


def _switch() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT loupe_append_only()")
        return cursor.fetchone()[0]


def _refused(sql: str) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    except DatabaseError:
        return True
    return False


@sqlite_only
@pytest.mark.django_db
def test_every_guarded_table_has_its_triggers_after_all_migrations():
    """SQLite drops a table's triggers when Django rebuilds the table: a later migration must recreate them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        found = {name: (table, sql) for name, table, sql in cursor.fetchall()}

    assert {name: found.get(name, (None,))[0] for name in TRIGGERS} == TRIGGERS
    assert all("WHEN loupe_append_only() IS NOT 0" in found[name][1] for name in TRIGGERS)


@sqlite_only
@pytest.mark.django_db
def test_the_switch_is_on_outside_flush():
    assert _switch() == 1
    assert append_only_enforced() == 1


@sqlite_only
def test_the_test_harness_flushes_through_the_plugin():
    assert DatabaseOperations.execute_sql_flush is sqlite_flush._execute_sql_flush_through_the_triggers


@sqlite_only
@pytest.mark.django_db
def test_the_flush_bypass_covers_the_flush_call_and_nothing_after_it(trained_dataset, reviewer):
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    assert DataAccess.objects.exists() and AuditEvent.objects.exists()

    # As Django's flush does (inside the test's transaction here, so it rolls back).
    connection.ops.execute_sql_flush(["DELETE FROM governance_dataaccess;"])

    assert not DataAccess.objects.exists()
    assert _switch() == 1
    assert _refused("DELETE FROM governance_auditevent")
    assert AuditEvent.objects.exists()


def test_the_flush_bypass_is_per_thread_and_undone_even_when_the_flush_fails():
    seen_elsewhere: list[int] = []
    with pytest.raises(RuntimeError), flush_bypass():
        assert append_only_enforced() == 0
        other = threading.Thread(target=lambda: seen_elsewhere.append(append_only_enforced()))
        other.start()
        other.join()
        raise RuntimeError("the flush failed")

    assert seen_elsewhere == [1]
    assert append_only_enforced() == 1


@sqlite_only
@pytest.mark.django_db
def test_a_connection_without_the_function_cannot_change_a_guarded_table():
    """Fail closed: the sqlite3 shell, or anything that bypasses Django, gets an error instead of a change."""
    raw = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.1)
    try:
        for table in GUARDED_TABLES:
            for statement in (f"UPDATE {table} SET id = id WHERE 0", f"DELETE FROM {table} WHERE 0"):
                with pytest.raises(sqlite3.OperationalError, match="no such function: loupe_append_only"):
                    raw.execute(statement)
    finally:
        raw.close()


@sqlite_only
@pytest.mark.django_db
@pytest.mark.parametrize(("answer", "refused"), [(1, True), (None, True), ("0", True), (0.5, True), (0, False)])
def test_only_the_integer_0_opens_a_guarded_table(tmp_path, answer, refused):
    """The triggers as migrated, on a scratch copy of the table: anything but 0 from the switch keeps them firing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'governance_dataaccess' AND type IN ('table', 'trigger')"
        )
        schema = [sql for (sql,) in cursor.fetchall()]
    scratch = sqlite3.connect(tmp_path / "scratch.sqlite3", isolation_level=None)
    try:
        for sql in schema:
            scratch.execute(sql)
        scratch.create_function("loupe_append_only", 0, lambda: answer)
        scratch.execute(
            "INSERT INTO governance_dataaccess (accessed_at, user_id, item_id, dataset_id, purpose, request_id)"
            " VALUES ('2024-01-01', 1, 1, 1, 'api', '')"
        )
        for statement in (
            "UPDATE governance_dataaccess SET request_id = 'forged'",
            "DELETE FROM governance_dataaccess",
        ):
            if refused:
                with pytest.raises(
                    sqlite3.IntegrityError, match=r"governance_dataaccess is append-only \((UPDATE|DELETE) refused\)"
                ):
                    scratch.execute(statement)
            else:
                scratch.execute(statement)
        assert scratch.execute("SELECT count(*) FROM governance_dataaccess").fetchone()[0] == (1 if refused else 0)
    finally:
        scratch.close()


def _rows_of_every_guarded_kind(dataset, reviewer, import_rows) -> None:  # type: ignore[no-untyped-def]
    import_rows(synthetic_rows(3, start=500, labelled=False), name="pool.csv")  # audit events
    login(reviewer).get(reverse("annotations:review", args=[dataset.pk]))  # a lease and a read record
    review_submit(
        item_id=Item.objects.get(leased_to=reviewer).pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=LabelClass.objects.get(dataset=dataset, name="benign"), shown_prediction_id=None),
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("turn", ["first", "second"])
def test_a_transactional_test_leaves_guarded_rows_that_the_flush_still_empties(turn, dataset, reviewer, import_rows):
    """Run twice in a row: whichever runs second starts on the tables the first one's flush emptied."""
    assert (Review.objects.count(), AuditEvent.objects.count(), DataAccess.objects.count()) == (0, 0, 0)

    _rows_of_every_guarded_kind(dataset, reviewer, import_rows)

    assert Review.objects.exists() and AuditEvent.objects.exists() and DataAccess.objects.exists()
    # Outside the flush, in autocommit too, the rows stay put.
    assert _refused("DELETE FROM annotations_review")
    assert _refused("UPDATE governance_auditevent SET reason = 'rewritten'")
    assert _refused("DELETE FROM governance_dataaccess")
    assert Review.objects.exists() and AuditEvent.objects.exists() and DataAccess.objects.exists()
