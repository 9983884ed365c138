"""Item.feature_hash (issue 9, point 6: no leakage): a hash of the feature values alone, with the index the
import's leakage check probes, and the staging table's column that carries it to the item.

Both columns are nullable without a default, so on SQLite they are added with ALTER TABLE ADD COLUMN (no
rebuild of annotations_item; annotations_review, whose triggers a rebuild would drop, is not touched).
Existing items are filled by 0021.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0019_item_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="importstagedrow",
            name="feature_hash",
            field=models.CharField(blank=True, help_text="Item.feature_hash to be.", max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="item",
            name="feature_hash",
            field=models.CharField(
                blank=True,
                help_text="sha256 of the feature values alone (annotations/feature_hash.py): the same for the same "
                "values whatever the id, label or time; the key of the leakage checks at import.",
                max_length=64,
                null=True,
            ),
        ),
        # leakage at import (annotations/import_leakage.py): the dataset's items with a given feature hash
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["dataset", "feature_hash"], name="item_feature_hash"),
        ),
    ]
