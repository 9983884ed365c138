"""The retraining policy counts every gold label people derived (one review, consensus, adjudication), not
only single reviews (models_app/services.py, _MADE_BY_PEOPLE); its help text says so.

gold_reviewed_since serves that count: (dataset_id, updated_at) over the gold labels whose origin is not
"import". The count is taken after every answer, up to the policy's threshold; on gold_new_since (all origins)
it would walk, and drop one by one, every label an import wrote since the last run (a holdout or labelled
file: any number of rows). Partial, so imports (most of the table) add nothing to it.

The table is annotations', the query and the index models_app's: annotations knows nothing of the policy
(DESIGN, dependencies), so the index is created here, in SQL both SQLite and PostgreSQL accept, and is not part
of annotations' model state. The predicate is written exactly as the ORM writes ~Q(origin="import") and as the
policy statement writes it, so both planners match it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0001_initial"),
        ("models_app", "0006_prediction_version_item_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="retrainingpolicy",
            name="new_gold_labels",
            field=models.PositiveIntegerField(
                default=20,
                help_text="Queue a training run after this many new gold labels since the last run was requested: "
                "derived from one review, from agreeing reviews (overlap) or by an adjudicator, each item counted "
                "once however often its label changed. Imported labels do not count.",
            ),
        ),
        migrations.AlterField(
            model_name="retrainingpolicy",
            name="schedule_hours",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Also retrain every this many hours when at least one gold label is new in the same sense "
                "(empty: no schedule).",
                null=True,
            ),
        ),
        migrations.RunSQL(
            sql='CREATE INDEX "gold_reviewed_since" ON "annotations_goldlabel" ("dataset_id", "updated_at")'
            " WHERE NOT (\"origin\" = 'import')",
            reverse_sql='DROP INDEX "gold_reviewed_since"',
        ),
    ]
