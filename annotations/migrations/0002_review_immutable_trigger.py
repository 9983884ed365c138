"""On PostgreSQL, the database itself refuses UPDATE and DELETE on reviews (they are immutable)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION loupe_review_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'annotations_review is immutable (% refused): submit a new review instead', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotations_review_immutable
    BEFORE UPDATE OR DELETE ON annotations_review
    FOR EACH ROW EXECUTE FUNCTION loupe_review_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS annotations_review_immutable ON annotations_review;
DROP FUNCTION IF EXISTS loupe_review_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
