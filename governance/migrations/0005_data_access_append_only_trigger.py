"""On PostgreSQL, the database refuses UPDATE and DELETE on data-access records too."""

from django.db import migrations

CREATE = """
CREATE TRIGGER governance_dataaccess_append_only
    BEFORE UPDATE OR DELETE ON governance_dataaccess
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();
"""
DROP = "DROP TRIGGER IF EXISTS governance_dataaccess_append_only ON governance_dataaccess;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0004_data_access"), ("governance", "0003_audit_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
