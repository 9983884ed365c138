"""Indexes an import no longer writes: partial ones for what a fresh item lacks, and no duplicate FK indexes.

A new item is neither leased nor predicted, and an imported gold label has no
review, so the partial indexes below skip every row an import writes; the
label foreign keys' own indexes duplicated item_list_predicted / gold_label_list.
Measured with PostgreSQL's COPY of 100,000 items x 30 features: 2.22-2.46 s with
the old 13 indexes, 1.94-2.08 s with these (bench/import_speed.py end to end).

The foreign keys lose their index by SQL (DROP INDEX), with AlterField in the
state only: AlterField itself rebuilds both tables on SQLite, which would drop
what earlier migrations made there in SQL (models_app 0007's gold_reviewed_since).
Django names a foreign key's index the same way on every backend.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_FK_INDEXES = [
    ("annotations_item_predicted_label_id_9b5de72a", "annotations_item", "predicted_label_id"),
    ("annotations_goldlabel_label_id_0d71f06f", "annotations_goldlabel", "label_id"),
    ("annotations_goldlabel_review_id_ec5d7d28", "annotations_goldlabel", "review_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0026_retention_of_review_reasons_and_import_reports"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="item", name="item_lease"),
        migrations.RemoveIndex(model_name="item", name="item_list_predicted"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="goldlabel",
                    name="label",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="annotations.labelclass",
                    ),
                ),
                migrations.AlterField(
                    model_name="goldlabel",
                    name="review",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="annotations.review",
                    ),
                ),
                migrations.AlterField(
                    model_name="item",
                    name="predicted_label",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="annotations.labelclass",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"', reverse_sql=f'CREATE INDEX "{name}" ON "{table}" ("{column}")'
                )
                for name, table, column in _FK_INDEXES
            ],
        ),
        migrations.AddIndex(
            model_name="goldlabel",
            index=models.Index(
                condition=models.Q(("review__isnull", False)), fields=["review"], name="gold_from_review"
            ),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("leased_to__isnull", False)), fields=["leased_to", "dataset"], name="item_lease"
            ),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("predicted_label__isnull", False)),
                fields=["predicted_label"],
                name="item_predicted_label_fk",
            ),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("predicted_label__isnull", False)),
                fields=["dataset", "predicted_label", "id"],
                name="item_list_predicted",
            ),
        ),
    ]
