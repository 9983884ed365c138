"""SQLite's append-only triggers on data-access records again: Django's SQLite schema editor may
rebuild a table to add a column (0024), which drops its triggers (see 0006, whose triggers these
are). Only the data-access table's: the audit events' were replaced by 0021 (retention's
tombstones) and that table is not touched here."""

import importlib

from django.db import migrations

_first = importlib.import_module("governance.migrations.0006_append_only_triggers_on_sqlite")
TABLE = "governance_dataaccess"


def _triggers():
    return [trigger for trigger in _first._triggers() if trigger[1] == TABLE]


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, table, operation, message in _triggers():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)  # a no-op where a rebuild dropped it
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW"
            f" WHEN loupe_append_only() IS NOT 0 BEGIN SELECT RAISE(ABORT, '{message}'); END",
            params=None,
        )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, *_ in _triggers():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0024_data_access_served_by")]
    operations = [migrations.RunPython(forwards, backwards)]
