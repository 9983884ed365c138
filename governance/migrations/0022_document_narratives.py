"""Narratives of model cards and datasheets (issue 10, point 8): versions and their signatures, append-only.

The database refuses UPDATE and DELETE on both tables, as on the audit events: PostgreSQL reuses
0003's function loupe_audit_append_only(); SQLite's triggers fire while loupe_append_only() is not 0
(0006 explains why; the test harness's flush is the one caller that sees 0).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


TABLES = ("governance_documentnarrative", "governance_documentnarrativesignature")
OPERATIONS = ("UPDATE", "DELETE")


def append_only(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION loupe_audit_append_only();",
                params=None,
            )
        elif vendor == "sqlite":
            for operation in OPERATIONS:
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} ON {table}"
                    " FOR EACH ROW WHEN loupe_append_only() IS NOT 0"
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only ({operation} refused)'); END",
                    params=None,
                )


def append_only_undo(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};", params=None)
        elif vendor == "sqlite":
            for operation in OPERATIONS:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{operation.lower()}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0022_dataset_model_output_stop_switch"),
        ("governance", "0021_audit_retention"),
        ("models_app", "0005_model_version_shadow"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DocumentNarrative",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "document",
                    models.CharField(choices=[("model_card", "Model card"), ("datasheet", "Datasheet")], max_length=16),
                ),
                (
                    "version",
                    models.PositiveIntegerField(
                        help_text="1 for the first text of this document, then one more per edit."
                    ),
                ),
                (
                    "sections",
                    models.JSONField(help_text="Section name → plain text, as written (the document's section names)."),
                ),
                (
                    "subject_hash",
                    models.CharField(
                        help_text="sha256 of what the text describes when it was written: the model version's signed record (artifact, snapshot, evaluations) or the snapshot's content hash.",
                        max_length=64,
                    ),
                ),
                ("written_at", models.DateTimeField()),
                (
                    "change_note",
                    models.CharField(blank=True, help_text="What changed since the previous version.", max_length=500),
                ),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="annotations.dataset"
                    ),
                ),
                (
                    "model_version",
                    models.ForeignKey(
                        blank=True,
                        help_text="The version a model card's narrative describes (empty for a datasheet).",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="models_app.modelversion",
                    ),
                ),
                (
                    "snapshot",
                    models.ForeignKey(
                        blank=True,
                        help_text="The snapshot a datasheet's narrative describes (empty for a model card).",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="models_app.datasetsnapshot",
                    ),
                ),
                (
                    "written_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={
                "ordering": ["-version"],
            },
        ),
        migrations.CreateModel(
            name="DocumentNarrativeSignature",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "narrative",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="signatures",
                        to="governance.documentnarrative",
                    ),
                ),
                (
                    "signature",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="governance.signature"
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="documentnarrative",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("document", "model_card"), ("model_version__isnull", False), ("snapshot__isnull", True)),
                    models.Q(("document", "datasheet"), ("model_version__isnull", True), ("snapshot__isnull", False)),
                    _connector="OR",
                ),
                name="narrative_document_has_its_subject",
            ),
        ),
        migrations.AddConstraint(
            model_name="documentnarrative",
            constraint=models.UniqueConstraint(
                condition=models.Q(("document", "model_card")),
                fields=("model_version", "version"),
                name="narrative_model_card_version_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="documentnarrative",
            constraint=models.UniqueConstraint(
                condition=models.Q(("document", "datasheet")),
                fields=("snapshot", "version"),
                name="narrative_datasheet_version_unique",
            ),
        ),
        migrations.RunPython(append_only, append_only_undo),
    ]
