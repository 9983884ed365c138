"""On SQLite too, the database itself refuses UPDATE and DELETE on audit events and data-access records.

The PostgreSQL triggers come from 0003 and 0005. SQLite's fire only while
``loupe_append_only()`` is not 0: workflow_site/sqlite_guards.py registers that
function on every connection Django opens, and only the test harness's flush
(which on SQLite DELETEs where PostgreSQL TRUNCATEs) sees it return 0. Without
the function (the sqlite3 shell) the UPDATE or DELETE fails to compile: refused.

SQLite drops a table's triggers with the table, and Django's SQLite schema
editor rebuilds a table for most column changes: a later migration that alters
either table must create its triggers again (tests/site/test_sqlite_append_only.py
checks that they exist).
"""

from django.db import migrations

TABLES = ("governance_auditevent", "governance_dataaccess")
OPERATIONS = ("UPDATE", "DELETE")


def _triggers():
    for table in TABLES:
        for operation in OPERATIONS:
            # The same words as the PostgreSQL trigger: '<table> is append-only (<op> refused)'.
            yield (
                f"{table}_append_only_{operation.lower()}",
                table,
                operation,
                f"{table} is append-only ({operation} refused)",
            )


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, table, operation, message in _triggers():
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW"
            f" WHEN loupe_append_only() IS NOT 0 BEGIN SELECT RAISE(ABORT, '{message}'); END",
            params=None,
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, *_ in _triggers():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_data_access_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
