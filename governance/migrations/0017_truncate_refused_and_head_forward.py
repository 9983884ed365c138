"""The database refuses TRUNCATE of the append-only tables, and the chain head only moves forward.

TRUNCATE (PostgreSQL): row triggers (0003, 0005, 0015) never see it, so a
statement-level trigger refuses it on the audit events, the read log, the
checkpoints and the chain head. Like every ordinary trigger it does not fire
while ``session_replication_role = replica``, which only a superuser (or a role
granted SET on that parameter) may set: the test harness's flush sets it for
its TRUNCATE (tests/sqlite_flush.py); the application role cannot
(``manage.py db_roles``), nor can it disable a trigger, which takes the table's owner.

The chain head (both databases): an UPDATE that lowers seq, or keeps seq and
changes the hash, is refused, and so is a DELETE. Appending moves seq up by one
in a single UPDATE (governance/audit.py), which passes. Removing the tail of the
chain and moving the head back now takes disabling triggers, which only the
owner or a superuser can, and a signed checkpoint still shows it.

On SQLite both fire while ``loupe_append_only()`` is not 0, as 0006 explains
(the test flush DELETEs the head row; and a connection without the function,
such as the sqlite3 shell, cannot even compile a change to the head). SQLite
drops a table's triggers when a migration rebuilds the table: a later migration
that alters the chain head table must create them again.
"""

from django.db import migrations

TRUNCATE_REFUSED = (
    "governance_auditevent",
    "governance_dataaccess",
    "governance_auditcheckpoint",
    "governance_auditchainhead",
)
HEAD = "governance_auditchainhead"

PG_CREATE = (
    """
CREATE OR REPLACE FUNCTION loupe_truncate_refused() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (TRUNCATE refused)', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION loupe_audit_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% only moves forward (DELETE refused)', TG_TABLE_NAME;
    END IF;
    IF NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash IS DISTINCT FROM OLD.hash) THEN
        RAISE EXCEPTION '% only moves forward (UPDATE from #% to #% refused)', TG_TABLE_NAME, OLD.seq, NEW.seq;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
    + "".join(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION loupe_truncate_refused();\n"
        for table in TRUNCATE_REFUSED
    )
    + f"""
CREATE TRIGGER {HEAD}_forward_only
    BEFORE UPDATE OR DELETE ON {HEAD}
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_head_forward_only();
"""
)
PG_DROP = (
    f"DROP TRIGGER IF EXISTS {HEAD}_forward_only ON {HEAD};\n"
    + "".join(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};\n" for table in TRUNCATE_REFUSED)
    + "DROP FUNCTION IF EXISTS loupe_audit_head_forward_only();\nDROP FUNCTION IF EXISTS loupe_truncate_refused();\n"
)

SQLITE_CREATE = (
    f"CREATE TRIGGER {HEAD}_forward_only_update BEFORE UPDATE ON {HEAD} FOR EACH ROW"
    " WHEN loupe_append_only() IS NOT 0 AND (NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash IS NOT OLD.hash))"
    f" BEGIN SELECT RAISE(ABORT, '{HEAD} only moves forward (UPDATE refused)'); END",
    f"CREATE TRIGGER {HEAD}_forward_only_delete BEFORE DELETE ON {HEAD} FOR EACH ROW"
    " WHEN loupe_append_only() IS NOT 0"
    f" BEGIN SELECT RAISE(ABORT, '{HEAD} only moves forward (DELETE refused)'); END",
)
SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {HEAD}_forward_only_update",
    f"DROP TRIGGER IF EXISTS {HEAD}_forward_only_delete",
)


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("governance", "0016_promotion_gates")]
    operations = [migrations.RunPython(forwards, backwards)]
