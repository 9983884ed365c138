"""One index on an item's predicted label, for both the item list's filter and the PROTECT check.

item_list_predicted was (dataset, predicted_label, id) and item_predicted_label_fk
(predicted_label): a label belongs to one dataset, so (predicted_label, id) serves
both. Every prediction copied onto an item writes each of the item's indexes (the
UPDATE cannot be HOT: it changes indexed columns); one fewer is about 4 s of a
million items' refresh (bench/predictions.py).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0029_items_analyze_function"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="item",
            name="item_predicted_label_fk",
        ),
        migrations.RemoveIndex(
            model_name="item",
            name="item_list_predicted",
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("predicted_label__isnull", False)),
                fields=["predicted_label", "id"],
                name="item_list_predicted",
            ),
        ),
    ]
