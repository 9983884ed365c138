"""Retention (issue 10, point 10): hash scheme 2 and tombstones on audit events.

New events hash the digest of their payload instead of the payload
(governance/audit_chain.py), so an expired payload can be removed and the chain
still verifies. Rows already written keep scheme 1 and are never tombstoned.

The append-only triggers now allow exactly one UPDATE: on a scheme-2 event not
yet tombstoned, before and after set to NULL, reason to '', tombstoned_at set,
every other column unchanged. Any other UPDATE, any DELETE, and undoing a
tombstone are still refused. On PostgreSQL the trigger keeps its name
(governance_auditevent_append_only) with a new function; 0003's function stays
as it is, since data-access records and checkpoints still use it. On SQLite the
field changes above rebuild the table, which drops its triggers: both are made
again here (the DELETE one unchanged).
"""

from django.conf import settings
from django.db import migrations, models

PG_CREATE = """
CREATE OR REPLACE FUNCTION loupe_audit_event_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.hash_scheme = 2 AND OLD.tombstoned_at IS NULL AND NEW.tombstoned_at IS NOT NULL
       AND NEW.before IS NULL AND NEW.after IS NULL AND NEW.reason = ''
       AND (to_jsonb(NEW) - ARRAY['before', 'after', 'reason', 'tombstoned_at'])
           = (to_jsonb(OLD) - ARRAY['before', 'after', 'reason', 'tombstoned_at'])
    THEN
        RETURN NEW;  -- retention's tombstone: the payload goes, the hashed header stays
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS governance_auditevent_append_only ON governance_auditevent;
CREATE TRIGGER governance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_event_guard();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS governance_auditevent_append_only ON governance_auditevent;
CREATE TRIGGER governance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();
DROP FUNCTION IF EXISTS loupe_audit_event_guard();
"""

# The columns a tombstone leaves as they were (every column but the payload and tombstoned_at). A later
# migration that adds a column to this table rebuilds it on SQLite and must make these triggers again anyway.
KEPT = (
    "id", "seq", "created_at", "actor_id", "actor_username", "action", "object_type", "object_id",
    "dataset_id", "request_id", "prev_hash", "hash", "hash_scheme", "payload_sha256",
)  # fmt: skip
TOMBSTONE = (
    "OLD.hash_scheme = 2 AND OLD.tombstoned_at IS NULL AND NEW.tombstoned_at IS NOT NULL"
    """ AND NEW."before" IS NULL AND NEW."after" IS NULL AND NEW.reason = ''"""
    + "".join(f' AND NEW."{column}" IS OLD."{column}"' for column in KEPT)
)
SQLITE_TRIGGERS = {
    "governance_auditevent_append_only_update": ("UPDATE", f"loupe_append_only() IS NOT 0 AND NOT ({TOMBSTONE})"),
    "governance_auditevent_append_only_delete": ("DELETE", "loupe_append_only() IS NOT 0"),
}


def _sqlite_create(schema_editor, conditions):
    for name, (operation, condition) in conditions.items():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON governance_auditevent FOR EACH ROW WHEN {condition}"
            f" BEGIN SELECT RAISE(ABORT, 'governance_auditevent is append-only ({operation} refused)'); END",
            params=None,
        )


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        _sqlite_create(schema_editor, SQLITE_TRIGGERS)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)


def sqlite_triggers_as_before(apps, schema_editor):
    """Backwards, last: removing the fields rebuilt the table on SQLite, so 0006's refuse-all triggers come back."""
    if schema_editor.connection.vendor == "sqlite":
        refuse_all = {
            name: (operation, "loupe_append_only() IS NOT 0") for name, (operation, _) in SQLITE_TRIGGERS.items()
        }
        _sqlite_create(schema_editor, refuse_all)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0020_audit_search_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, sqlite_triggers_as_before),
        migrations.AddField(
            model_name="auditevent",
            name="hash_scheme",
            field=models.PositiveSmallIntegerField(
                default=1,
                help_text="1: the hash covers the payload itself (events before retention existed, never tombstoned); 2: it covers payload_sha256, so an expired payload can be removed and the chain still verifies.",
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="payload_sha256",
            field=models.CharField(
                blank=True,
                help_text="Scheme 2: sha256 of canonical JSON {after, before, reason}; kept when the payload is removed.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="tombstoned_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When retention removed this event's payload (before, after, reason); empty: the payload is here.",
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("tombstoned_at__isnull", True),
                    models.Q(("after__isnull", True), ("before__isnull", True), ("hash_scheme", 2), ("reason", "")),
                    _connector="OR",
                ),
                name="audit_tombstone_is_scheme2_without_payload",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("hash_scheme", 1),
                    models.Q(("hash_scheme", 2), models.Q(("payload_sha256", ""), _negated=True)),
                    _connector="OR",
                ),
                name="audit_hash_scheme_known",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
