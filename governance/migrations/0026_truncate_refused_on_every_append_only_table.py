"""TRUNCATE is refused on every append-only governance table, not only the trail's four (0017).

Row triggers (0019, 0022, 0023) refuse UPDATE and DELETE on signatures, change-envelope versions,
their sign-offs and assessments, and document narratives and their signatures; TRUNCATE never reaches
a row trigger, so each gets 0017's statement-level trigger too. The application role also lacks the
TRUNCATE privilege (workflow_site/db_roles.py); this holds against the tables' owner by mistake, and
keeps the rule in the schema. PostgreSQL only: SQLite has no TRUNCATE. The test harness's flush gets
through as for 0017's tables (tests/sqlite_flush.py: session_replication_role = replica).
"""

from django.db import migrations

TABLES = (
    "governance_signature",
    "governance_changeenvelopeversion",
    "governance_changeenvelopesignoff",
    "governance_envelopeassessment",
    "governance_documentnarrative",
    "governance_documentnarrativesignature",
)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION loupe_truncate_refused();",
            params=None,
        )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};", params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0025_data_access_triggers_on_sqlite_again")]
    operations = [migrations.RunPython(forwards, backwards)]
