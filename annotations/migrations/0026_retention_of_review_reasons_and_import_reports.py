"""Retention (issue 10, point 10) reaches reviews' free text and import reports (annotations/retention.py).

A review's `reason` is what a reviewer typed: it may quote the item. Reviews are immutable (0002, 0003,
0012), so their triggers now allow exactly one UPDATE, the one retention makes: `reason` emptied and
`reason_removed_at` set, on a review whose text was not removed yet, every other column unchanged. Any
other UPDATE, every DELETE, and undoing a removal are still refused. On PostgreSQL the function keeps
its name (loupe_review_immutable: tests/governance/test_db_privileges.py finds the guarded tables by it)
with a new body; on SQLite the new constraint rebuilds the table, which drops its triggers, so both are
made again here (the DELETE one unchanged). The application role gets UPDATE on those two columns only
(workflow_site/db_roles.py), as it has on an audit event's payload.

An import batch's `purged_at` marks a batch whose row-level report, error text and files retention
removed; batches have no trigger.
"""

from django.db import migrations, models

PG_GUARD = """
CREATE OR REPLACE FUNCTION loupe_review_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.reason_removed_at IS NULL AND NEW.reason_removed_at IS NOT NULL AND NEW.reason = ''
       AND (to_jsonb(NEW) - ARRAY['reason', 'reason_removed_at'])
           = (to_jsonb(OLD) - ARRAY['reason', 'reason_removed_at'])
    THEN
        RETURN NEW;  -- retention: the free text goes, the answer stays
    END IF;
    RAISE EXCEPTION 'annotations_review is immutable (% refused): submit a new review instead', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
PG_AS_BEFORE = """
CREATE OR REPLACE FUNCTION loupe_review_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'annotations_review is immutable (% refused): submit a new review instead', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""

# Every column but the two retention changes. A later migration that adds a column to this table rebuilds
# it on SQLite and must make these triggers again anyway (tests/site/test_sqlite_append_only.py).
KEPT = (
    "id", "item_id", "reviewer_id", "decision", "label_id", "shown_prediction_id", "shown_label_id",
    "shown_confidence", "reason_code", "flagged", "mode", "selection_strategy", "selection_score",
    "guideline_version", "supersedes_id", "time_on_item_ms", "created_at",
)  # fmt: skip
REMOVAL = "OLD.reason_removed_at IS NULL AND NEW.reason_removed_at IS NOT NULL AND NEW.reason = ''" + "".join(
    f' AND NEW."{column}" IS OLD."{column}"' for column in KEPT
)
MESSAGE = "annotations_review is immutable ({operation} refused): submit a new review instead"
SQLITE_TRIGGERS = {
    "annotations_review_immutable_update": ("UPDATE", f"loupe_append_only() IS NOT 0 AND NOT ({REMOVAL})"),
    "annotations_review_immutable_delete": ("DELETE", "loupe_append_only() IS NOT 0"),
}


def _sqlite_create(schema_editor, triggers):  # type: ignore[no-untyped-def]
    for name, (operation, condition) in triggers.items():
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON annotations_review FOR EACH ROW WHEN {condition}"
            f" BEGIN SELECT RAISE(ABORT, '{MESSAGE.format(operation=operation)}'); END",
            params=None,
        )


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_GUARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        _sqlite_create(schema_editor, SQLITE_TRIGGERS)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_AS_BEFORE, params=None)


def sqlite_triggers_as_before(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Backwards, last: removing the constraint and field rebuilt the table on SQLite, so 0003's triggers return."""
    if schema_editor.connection.vendor == "sqlite":
        _sqlite_create(
            schema_editor,
            {name: (operation, "loupe_append_only() IS NOT 0") for name, (operation, _) in SQLITE_TRIGGERS.items()},
        )


class Migration(migrations.Migration):
    dependencies = [("annotations", "0025_review_truncate_refused")]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, sqlite_triggers_as_before),
        migrations.AddField(
            model_name="importbatch",
            name="purged_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When retention removed this batch's row-level report, error text and files (its counts,"
                " file name and sha256 stay); empty: they are here.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="review",
            name="reason_removed_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When retention removed this review's free-text reason; empty: the text is here.",
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="review",
            index=models.Index(condition=~models.Q(reason=""), fields=["created_at"], name="review_reason_kept"),
        ),
        migrations.AddConstraint(
            model_name="review",
            constraint=models.CheckConstraint(
                condition=models.Q(("reason_removed_at__isnull", True), ("reason", ""), _connector="OR"),
                name="review_reason_removed_is_empty",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
