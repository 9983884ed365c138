"""The database refuses UPDATE and DELETE on audit checkpoints, as it does on audit events.

PostgreSQL reuses 0003's function loupe_audit_append_only(); SQLite's triggers fire
while loupe_append_only() is not 0, as 0006 explains (the test harness's flush is
the one caller that sees 0). A later migration that makes SQLite rebuild this table
must create its triggers again.
"""

from django.db import migrations

TABLE = "governance_auditcheckpoint"
OPERATIONS = ("UPDATE", "DELETE")

PG_CREATE = f"""
CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();
"""
PG_DROP = f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        for operation in OPERATIONS:
            schema_editor.execute(
                f"CREATE TRIGGER {TABLE}_append_only_{operation.lower()} BEFORE {operation} ON {TABLE} FOR EACH ROW"
                f" WHEN loupe_append_only() IS NOT 0"
                f" BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only ({operation} refused)'); END",
                params=None,
            )


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        for operation in OPERATIONS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only_{operation.lower()}", params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0014_audit_checkpoint")]
    operations = [migrations.RunPython(forwards, backwards)]
