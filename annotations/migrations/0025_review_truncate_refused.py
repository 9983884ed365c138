"""TRUNCATE is refused on reviews (PostgreSQL), as UPDATE and DELETE already are (0002).

A row trigger never sees TRUNCATE, so a statement-level one refuses it. Its own function, not
governance's (annotations knows nothing of governance, its migrations included). The test harness's
flush gets through as for the audit tables (tests/sqlite_flush.py: session_replication_role = replica).
"""

from django.db import migrations

TABLE = "annotations_review"

PG_CREATE = f"""
CREATE OR REPLACE FUNCTION annotations_truncate_refused() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is immutable (TRUNCATE refused)', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION annotations_truncate_refused();
"""
PG_DROP = f"""
DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS annotations_truncate_refused();
"""


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0024_purged_waiting_counters")]
    operations = [migrations.RunPython(forwards, backwards)]
