"""On PostgreSQL, the database itself refuses UPDATE and DELETE on audit events.

(TRUNCATE is not blocked, so test databases can still be flushed; a TRUNCATE
breaks the chain and verify_audit reports it.)
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION loupe_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER governance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS governance_auditevent_append_only ON governance_auditevent;
DROP FUNCTION IF EXISTS loupe_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_roles_and_chain_head")]
    operations = [migrations.RunPython(forwards, backwards)]
