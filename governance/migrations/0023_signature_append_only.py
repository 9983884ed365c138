"""Electronic signatures are append-only in the database too (issue 10, point 3; review finding).

A signature row that could be rewritten (its record_hash set to a changed record's new hash) would
make a changed record verify again. The database refuses UPDATE and DELETE on the table, as on the
audit events: PostgreSQL reuses 0003's function loupe_audit_append_only(); SQLite's triggers fire
while loupe_append_only() is not 0 (0006 explains why; the test harness's flush is the one caller
that sees 0). The application role gets SELECT and INSERT only (workflow_site/db_roles.py).
"""

from django.db import migrations

TABLE = "governance_signature"
OPERATIONS = ("UPDATE", "DELETE")


def append_only(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
            " FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();",
            params=None,
        )
    elif vendor == "sqlite":
        for operation in OPERATIONS:
            schema_editor.execute(
                f"CREATE TRIGGER {TABLE}_append_only_{operation.lower()} BEFORE {operation} ON {TABLE}"
                " FOR EACH ROW WHEN loupe_append_only() IS NOT 0"
                f" BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only ({operation} refused)'); END",
                params=None,
            )


def append_only_undo(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};", params=None)
    elif vendor == "sqlite":
        for operation in OPERATIONS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only_{operation.lower()}", params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0022_document_narratives")]
    operations = [migrations.RunPython(append_only, append_only_undo)]
