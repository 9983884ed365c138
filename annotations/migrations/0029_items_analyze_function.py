"""loupe_items_analyze(): ANALYZE of the items table for the application role (PostgreSQL).

A large import analyses the items table inside its own transaction before it asks questions
about the rows it wrote (annotations/import_statistics.py). Only the table's owner may
ANALYZE it (PostgreSQL before 17), and under least privilege (`manage.py db_roles`) the
application is not the owner: its ANALYZE would be skipped with a warning, and the import
planned on statistics that know nothing of its rows. So the owner's function does it:
SECURITY DEFINER, no arguments, a fixed search_path, one statement on one table. EXECUTE is
revoked from PUBLIC; `db_roles` grants it to the application role (the owner and a superuser
may call it anyway). db_roles also hands every loupe_* function to the owner.
"""

from django.db import migrations

COLUMNS = "dataset_id, batch_id, queue_state, feature_hash, predicted_by_version, purged_at"


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema())")
        (schema,) = cursor.fetchone()
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {schema}.loupe_items_analyze() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            ANALYZE {schema}.annotations_item ({COLUMNS});
        END;
        $$;
        REVOKE ALL ON FUNCTION {schema}.loupe_items_analyze() FROM PUBLIC;
        """,
        params=None,
    )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS loupe_items_analyze()", params=None)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0028_holdout_feature_hash_index")]
    operations = [migrations.RunPython(forwards, backwards)]
