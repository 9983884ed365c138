"""On PostgreSQL, a pg_trgm GIN index for the auditor's free-text search (governance/audit_search.py).

The index is on exactly the expression the search filters with (SEARCH_TEXT), so
`ILIKE '%term%'` on it is answered from the index instead of reading every event.
pg_trgm is a trusted extension (PostgreSQL 13+): the database owner that runs
migrations may create it without being a superuser. SQLite searches with a plain
LIKE and gets no index. The expression is spelled out here, not imported, so that
a later change to SEARCH_TEXT needs a new migration rather than silently
rewriting this one.

The expression's statistics target is raised to 1000: the planner estimates how many
events contain a term from that histogram. With the default 100 buckets a term in 1%
of the events showed in none, was estimated at 100 rows, and the page fetched all
10,000 matches from the heap to keep 51 (226 ms at 1M events) instead of walking seq
backwards and stopping at the 51st (a few ms).
"""

from django.db import migrations

SEARCH_TEXT = (
    "(action || ' ' || object_type || ' ' || object_id || ' ' || actor_username || ' ' || reason"
    " || ' ' || COALESCE(CAST(before AS text), '') || ' ' || COALESCE(CAST(after AS text), ''))"
)

CREATE = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS audit_search_trgm ON governance_auditevent USING gin ({SEARCH_TEXT} gin_trgm_ops);
ALTER INDEX audit_search_trgm ALTER COLUMN 1 SET STATISTICS 1000;
"""
# The extension stays: other objects may have come to depend on it.
DROP = "DROP INDEX IF EXISTS audit_search_trgm;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0019_change_envelope")]
    operations = [migrations.RunPython(forwards, backwards)]
