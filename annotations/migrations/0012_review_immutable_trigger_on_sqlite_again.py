"""SQLite's review triggers again: 0011 added columns to annotations_review, and Django's SQLite
schema editor rebuilt the table, which drops its triggers (see 0003, whose triggers these are)."""

import importlib

from django.db import migrations

_first = importlib.import_module("annotations.migrations.0003_review_immutable_trigger_on_sqlite")


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _first.backwards(apps, schema_editor)  # DROP TRIGGER IF EXISTS: a no-op where the rebuild dropped them
    _first.forwards(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0011_reason_codes_and_follow_up_flag")]
    operations = [migrations.RunPython(forwards, _first.backwards)]
