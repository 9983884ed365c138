"""Index prediction_version_item (model_version, item) for the lineage's "items this version predicted"
(governance/lineage.py: a first page in item order and a capped count, per version).

It replaces the foreign key's own index on model_version, which it starts with: one index fewer
for every prediction the bulk writes insert. Built first, so no moment is left without either.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0005_model_version_shadow"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="prediction",
            index=models.Index(fields=["model_version", "item"], name="prediction_version_item"),
        ),
        migrations.AlterField(
            model_name="prediction",
            name="model_version",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="predictions",
                to="models_app.modelversion",
            ),
        ),
    ]
