"""The change envelope (issue 10, point 5): its versions, sign-offs and assessments, all append-only.

The database refuses UPDATE and DELETE on the three tables as it does on audit events: PostgreSQL reuses
0003's loupe_audit_append_only(); SQLite's triggers fire while loupe_append_only() is not 0 (0006 explains).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


TABLES = ("governance_changeenvelopeversion", "governance_changeenvelopesignoff", "governance_envelopeassessment")
OPERATIONS = ("UPDATE", "DELETE")


def append_only_forwards(apps, schema_editor):
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
                    f" FOR EACH ROW WHEN loupe_append_only() IS NOT 0"
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only ({operation} refused)'); END",
                    params=None,
                )


def append_only_backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};", params=None)
        elif vendor == "sqlite":
            for operation in OPERATIONS:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{operation.lower()}", params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0022_dataset_model_output_stop_switch'),
        ('governance', '0018_promotion_states_and_signature_meanings'),
        ('models_app', '0005_model_version_shadow'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ChangeEnvelopeVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField(help_text='1, 2, 3… per dataset.')),
                ('clauses', models.JSONField(help_text='The validated clauses (governance/envelope_clauses.py), canonical form.')),
                ('change_summary', models.TextField(help_text='What this version changes and why, as its author wrote it.')),
                ('record_hash', models.CharField(help_text='sha256 of the version as signed: dataset, number, clauses, summary, author.', max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('authored_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='envelope_versions', to='annotations.dataset')),
            ],
            options={
                'ordering': ['dataset', '-number'],
            },
        ),
        migrations.CreateModel(
            name='ChangeEnvelopeSignoff',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('authored', 'Signed by its author'), ('approval', 'Approved (by a different model admin)')], max_length=16)),
                ('reason', models.TextField(blank=True, help_text="The approver's comment, if any.")),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('signature', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='envelope_signoff', to='governance.signature')),
                ('signer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('version_author', models.ForeignKey(help_text="The version's author, copied here so the database itself can hold four eyes.", on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='signoffs', to='governance.changeenvelopeversion')),
            ],
            options={
                'ordering': ['created_at'],
            },
        ),
        migrations.CreateModel(
            name='EnvelopeAssessment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('clauses', models.JSONField(help_text='Each clause: name, expected, actual, passed, explanation.')),
                ('within', models.BooleanField(help_text='Every clause passed.')),
                ('substantial_change', models.BooleanField(help_text='Outside the envelope: a substantial change that needs a new envelope version to be promoted.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('champion', models.ForeignKey(blank=True, help_text='The champion the regression clause was judged against (empty: none).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='models_app.modelversion')),
                ('checked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('envelope_version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='assessments', to='governance.changeenvelopeversion')),
                ('model_version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='envelope_assessments', to='models_app.modelversion')),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
            },
        ),
        migrations.AddField(
            model_name='promotionrequest',
            name='envelope_assessment',
            field=models.ForeignKey(blank=True, help_text='The change-envelope check judged at the decision (empty: the dataset had no envelope).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='governance.envelopeassessment'),
        ),
        migrations.AddConstraint(
            model_name='changeenvelopeversion',
            constraint=models.UniqueConstraint(fields=('dataset', 'number'), name='envelope_version_unique'),
        ),
        migrations.AddConstraint(
            model_name='changeenvelopesignoff',
            constraint=models.UniqueConstraint(fields=('version', 'kind'), name='envelope_signoff_once'),
        ),
        migrations.AddConstraint(
            model_name='changeenvelopesignoff',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'authored'), ('signer', models.F('version_author'))), models.Q(('kind', 'approval'), models.Q(('signer', models.F('version_author')), _negated=True)), _connector='OR'), name='envelope_signoff_four_eyes'),
        ),
        migrations.AddIndex(
            model_name='envelopeassessment',
            index=models.Index(fields=['model_version', 'envelope_version', '-created_at'], name='envelope_assess_latest'),
        ),
        migrations.AddConstraint(
            model_name='envelopeassessment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('substantial_change', False), ('within', True)), models.Q(('substantial_change', True), ('within', False)), _connector='OR'), name='envelope_within_xor'),
        ),
        migrations.RunPython(append_only_forwards, append_only_backwards),
    ]
