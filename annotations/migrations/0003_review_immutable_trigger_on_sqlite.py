"""On SQLite too, the database itself refuses UPDATE and DELETE on reviews (they are immutable).

The PostgreSQL triggers come from 0002. SQLite's fire only while
``loupe_append_only()`` is not 0: workflow_site/sqlite_guards.py registers that
function on every connection Django opens, and only the test harness's flush
(which on SQLite DELETEs where PostgreSQL TRUNCATEs) sees it return 0. Without
the function (the sqlite3 shell) the UPDATE or DELETE fails to compile: refused.

SQLite drops a table's triggers with the table, and Django's SQLite schema
editor rebuilds a table for most column changes: a later migration that alters
annotations_review must create these triggers again
(tests/site/test_sqlite_append_only.py checks that they exist).
"""

from django.db import migrations

TRIGGERS = {
    "annotations_review_immutable_update": (
        "UPDATE",
        "annotations_review is immutable (UPDATE refused): submit a new review instead",
    ),
    "annotations_review_immutable_delete": (
        "DELETE",
        "annotations_review is immutable (DELETE refused): submit a new review instead",
    ),
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, (operation, message) in TRIGGERS.items():
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON annotations_review FOR EACH ROW"
            f" WHEN loupe_append_only() IS NOT 0 BEGIN SELECT RAISE(ABORT, '{message}'); END",
            params=None,
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0002_review_immutable_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
