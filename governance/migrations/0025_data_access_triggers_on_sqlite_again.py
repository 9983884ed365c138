"""SQLite's append-only triggers on data-access records again: 0024 added a column with a
default, and Django's SQLite schema editor rebuilt the table, which drops its triggers (see
0006, whose triggers these are; the audit events' are dropped and created again with them)."""

import importlib

from django.db import migrations

_first = importlib.import_module("governance.migrations.0006_append_only_triggers_on_sqlite")


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _first.backwards(apps, schema_editor)  # DROP TRIGGER IF EXISTS: a no-op where the rebuild dropped them
    _first.forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("governance", "0024_data_access_served_by")]
    operations = [migrations.RunPython(forwards, _first.backwards)]
