"""Least privilege on PostgreSQL (issue 10, point 2): what the application role cannot do, and the triggers.

The roles are made by the SQL of `manage.py db_roles` in this process's test
database, under names of their own, and dropped afterwards. The refusals are
asked of a second connection (psycopg) logged in as the application role; the
append and the import run through Django with the default connection switched
to that role. The chain head's forward-only trigger is tested on both databases.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from annotations.import_integrity import bypass_possible
from annotations.models import Item
from governance.audit import audit_record
from governance.models import AuditChainHead, AuditEvent
from tests.helpers import csv_bytes, database_connect, synthetic_rows
from workflow_site.checks import database_role_privileged
from workflow_site.db_roles import APPEND_ONLY_TABLES, HEAD_TABLE, role_setup_sql, schema_tables

ON_POSTGRES = connection.vendor == "postgresql"
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="roles, privileges and TRUNCATE are PostgreSQL's")

GUARDED = (*APPEND_ONLY_TABLES, HEAD_TABLE)
TRUNCATE_REFUSED = (
    "governance_auditevent",
    "governance_dataaccess",
    "governance_auditcheckpoint",
    HEAD_TABLE,
    # governance 0026 and annotations 0025: every other append-only table
    "governance_signature",
    "governance_changeenvelopeversion",
    "governance_changeenvelopesignoff",
    "governance_envelopeassessment",
    "governance_documentnarrative",
    "governance_documentnarrativesignature",
    "annotations_review",
)


@pytest.fixture(scope="module")
def roles(django_db_setup, django_db_blocker) -> Iterator[tuple[str, str]]:
    """An owner and an application role, set up as `db_roles --apply` would, dropped at the end."""
    if not ON_POSTGRES:
        pytest.skip("PostgreSQL roles")
    suffix = uuid.uuid4().hex[:10]
    owner, app = f"loupe_test_owner_{suffix}", f"loupe_test_app_{suffix}"
    with django_db_blocker.unblock():
        statements = role_setup_sql(
            owner=owner,
            app=app,
            database=connection.settings_dict["NAME"],
            existing_tables=schema_tables(connection),
            server_version=connection.pg_version,
        )
    admin = database_connect(autocommit=True)
    try:
        admin.execute("SET lock_timeout = '20s'")
        with admin.transaction():
            for statement in statements:
                if not statement.startswith("--"):
                    admin.execute(statement)
        yield owner, app
    finally:
        try:
            with admin.transaction():
                admin.execute(f'REASSIGN OWNED BY "{owner}" TO CURRENT_USER')
                # One role per DROP OWNED: both in one statement trips over the default ACL they share.
                admin.execute(f'DROP OWNED BY "{app}"')
                admin.execute(f'DROP OWNED BY "{owner}"')
                admin.execute(f'DROP ROLE IF EXISTS "{app}"')
                admin.execute(f'DROP ROLE IF EXISTS "{owner}"')
        finally:
            admin.close()


@pytest.fixture
def as_app(roles) -> Iterator[psycopg.Connection]:
    app_connection = database_connect(user=roles[1], autocommit=True)
    yield app_connection
    app_connection.close()


def _refused_to_app(app_connection: psycopg.Connection, sql: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        app_connection.execute(sql)
    return str(refused.value)


@contextmanager
def _django_connected_as(role: str) -> Iterator[None]:
    """Django's default connection (and any thread's new one: they share settings_dict) logs in as `role`."""
    saved = connection.settings_dict["USER"]
    connection.close()
    connection.settings_dict["USER"] = role
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["USER"] = saved


@postgres_only
@pytest.mark.parametrize("table", GUARDED)
def test_the_app_role_cannot_update_delete_or_truncate_an_append_only_table(as_app, table):
    if table != HEAD_TABLE:  # the head moves forward by UPDATE; its trigger refuses the way back
        assert "permission denied" in _refused_to_app(as_app, f"UPDATE {table} SET id = id WHERE false")
    assert "permission denied" in _refused_to_app(as_app, f"DELETE FROM {table} WHERE false")
    assert "permission denied" in _refused_to_app(as_app, f"TRUNCATE {table}")


@postgres_only
def test_the_app_role_cannot_disable_a_trigger_alter_a_table_or_switch_triggers_off(as_app, roles):
    owner, _ = roles
    for table in GUARDED:
        assert "must be owner" in _refused_to_app(as_app, f"ALTER TABLE {table} DISABLE TRIGGER USER")
    assert "must be owner" in _refused_to_app(
        as_app, "DROP TRIGGER governance_auditevent_append_only ON governance_auditevent"
    )
    _refused_to_app(as_app, "SET session_replication_role = replica")
    _refused_to_app(as_app, f'SET ROLE "{owner}"')
    _refused_to_app(as_app, "CREATE TABLE loupe_scratch (id int)")


@postgres_only
def test_the_app_role_reads_and_inserts_the_append_only_tables_and_writes_ordinary_ones(as_app):
    checks = [
        ("governance_auditevent", "SELECT"),
        ("governance_auditevent", "INSERT"),
        ("governance_auditchainhead", "UPDATE"),
        ("annotations_item", "UPDATE"),
        ("annotations_item", "DELETE"),
        ("annotations_item", "TRUNCATE"),
    ]
    granted = tuple(as_app.execute("SELECT has_table_privilege(%s, %s)", check).fetchone()[0] for check in checks)
    assert granted == (True, True, True, True, True, False)


@postgres_only
def test_the_app_role_may_update_only_the_columns_retention_empties_in_a_review(as_app):
    """Retention removes a review's free text (annotations/retention.py); the trigger holds it to that change."""
    columns = ("reason", "reason_removed_at", "decision", "label_id", "selection_strategy", "created_at")
    granted = tuple(
        as_app.execute("SELECT has_column_privilege('annotations_review', %s, 'UPDATE')", [c]).fetchone()[0]
        for c in columns
    )
    assert granted == (True, True, False, False, False, False)


@postgres_only
def test_the_setup_is_idempotent_and_later_tables_get_the_ordinary_grants(db, roles, as_app):
    owner, app = roles
    statements = role_setup_sql(
        owner=owner,
        app=app,
        database=connection.settings_dict["NAME"],
        existing_tables=schema_tables(connection),
        server_version=connection.pg_version,
    )
    admin = database_connect(autocommit=True)
    try:
        with admin.transaction():
            for statement in statements:
                if not statement.startswith("--"):
                    admin.execute(statement)
            admin.execute(f'SET LOCAL ROLE "{owner}"')  # as a later migration, run by the owner, would
            admin.execute("CREATE TABLE loupe_later_table (id int)")
            admin.execute("RESET ROLE")
            admin.execute(f'SET LOCAL ROLE "{app}"')
            admin.execute("INSERT INTO loupe_later_table VALUES (1)")
            assert admin.execute("SELECT has_table_privilege('loupe_later_table', 'TRUNCATE')").fetchone() == (False,)
            admin.execute("RESET ROLE")
            admin.execute("DROP TABLE loupe_later_table")
    finally:
        admin.close()


@postgres_only
def test_the_command_prints_the_setup_sql(db):
    out = io.StringIO()
    call_command("db_roles", "--owner", "loupe_owner", "--app", "loupe_app", stdout=out)
    sql = out.getvalue()
    assert "REVOKE UPDATE, DELETE ON" in sql and '"governance_auditevent"' in sql
    assert 'REVOKE DELETE ON "public"."governance_auditchainhead" FROM "loupe_app";' in sql
    assert not any("GRANT" in line and "TRUNCATE" in line for line in sql.splitlines())


@postgres_only
def test_every_table_with_an_append_only_trigger_is_narrowed_by_the_setup(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE p.proname IN ('loupe_audit_append_only', 'loupe_review_immutable', 'loupe_audit_event_guard')"
        )
        assert {row[0] for row in cursor.fetchall()} == set(APPEND_ONLY_TABLES)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_app_role_appends_an_audit_event_through_audit_record(roles):
    with transaction.atomic():
        audit_record(actor=None, action="test.before")  # the head row exists, made as the superuser
    with _django_connected_as(roles[1]):
        with transaction.atomic():
            event = audit_record(actor=None, action="test.as_app", after={"n": 1})
        assert AuditEvent.objects.get(pk=event.pk).seq == 2
        assert database_role_privileged(databases=["default"]) == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_import_as_the_app_role_keeps_the_row_triggers_and_succeeds(roles, dataset, model_admin):
    from annotations.services import import_batch_create

    with _django_connected_as(roles[1]):
        assert not bypass_possible(), "the application role may not set session_replication_role"
        batch = import_batch_create(
            dataset=dataset, user=model_admin, file_name="rows.csv", data=csv_bytes(synthetic_rows(6)), purpose="review"
        )
        assert batch.status == "imported", batch.report
        assert Item.objects.filter(batch=batch).count() == 6
        assert AuditEvent.objects.filter(action="import.completed", object_id=str(batch.pk)).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_large_import_as_the_app_role_refreshes_the_statistics_through_the_owners_function(
    roles, as_app, dataset, model_admin, monkeypatch
):
    from annotations import import_statistics
    from annotations.services import import_batch_create

    # Its own ANALYZE is skipped, with a warning: only the owner may (annotations migration 0029).
    notices: list[str] = []
    as_app.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    as_app.execute(f"ANALYZE {Item._meta.db_table}")
    assert any("permission denied" in notice or "skipping" in notice for notice in notices), notices
    monkeypatch.setattr(import_statistics, "MIN_ROWS", 3)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Item._meta.db_table}")  # as the superuser: nothing of this dataset yet

    with _django_connected_as(roles[1]):
        batch = import_batch_create(
            dataset=dataset, user=model_admin, file_name="rows.csv", data=csv_bytes(synthetic_rows(6)), purpose="review"
        )
        assert batch.status == "imported", batch.report
        assert "statistics" in batch.report["seconds"], batch.report["seconds"]
        assert import_statistics.planner_item_estimate(dataset.pk) >= 3


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("table", TRUNCATE_REFUSED)
def test_truncate_is_refused_by_the_trigger_even_to_a_superuser(table):
    # CASCADE, so a table others point at reaches its trigger rather than the foreign-key refusal.
    with pytest.raises(DatabaseError, match=r"(append-only|immutable) \(TRUNCATE refused\)"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table} CASCADE")


@postgres_only
def test_the_system_check_warns_when_the_app_connects_as_a_superuser(db):
    assert database_role_privileged(databases=None) == []  # the plain `check` asks no database
    [warning] = database_role_privileged(databases=["default"])
    assert warning.id == "loupe.W004" and "superuser" in warning.msg


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_system_check_warns_when_the_app_connects_as_the_audit_tables_owner(roles):
    with _django_connected_as(roles[0]):
        [warning] = database_role_privileged(databases=["default"])
    assert warning.id == "loupe.W005" and "owner of governance_auditevent" in warning.msg


@pytest.mark.django_db
def test_the_chain_head_cannot_move_backward_keep_its_seq_with_another_hash_or_be_deleted():
    with transaction.atomic():
        for n in range(3):
            audit_record(actor=None, action="test.forward", after={"n": n})
    head = AuditChainHead.objects.get()

    for change in ({"seq": head.seq - 1}, {"hash": "f" * 64}, {"seq": 0, "hash": "0" * 64}):
        with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
            AuditChainHead.objects.filter(pk=head.pk).update(**change)
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        AuditChainHead.objects.filter(pk=head.pk).delete()

    with transaction.atomic():
        event = audit_record(actor=None, action="test.forward", after={"n": 3})
    assert (event.seq, AuditChainHead.objects.get().seq) == (head.seq + 1, head.seq + 1)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_app_role_may_touch_only_the_tombstone_columns_and_the_trigger_still_judges_them(roles, as_app):
    # Retention (governance/retention.py) empties an expired payload as the application; nothing else may move.
    with transaction.atomic():
        audit_record(actor=None, action="test.live", after={"n": 1})
    assert "permission denied" in _refused_to_app(as_app, "UPDATE governance_auditevent SET action = 'x'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        as_app.execute("UPDATE governance_auditevent SET reason = 'rewritten'")  # allowed column, refused change
