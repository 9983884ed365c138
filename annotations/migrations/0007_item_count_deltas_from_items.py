"""Data: the counters' first values, counted once from the items that exist (issue 7, point 3).

From here on the writers (an import's publish, a review) keep them; see
annotations/counters.py. Reversing deletes the rows (the schema migration 0006
then drops the table).
"""

from django.db import migrations
from django.db.models import Count


def count_from_items(apps, schema_editor):
    Dataset = apps.get_model("annotations", "Dataset")
    Item = apps.get_model("annotations", "Item")
    GoldLabel = apps.get_model("annotations", "GoldLabel")
    ItemCountDelta = apps.get_model("annotations", "ItemCountDelta")
    rows = []
    for dataset_id in Dataset.objects.values_list("pk", flat=True):
        states = Item.objects.filter(dataset_id=dataset_id).values_list("queue_state").annotate(n=Count("id"))
        rows += [ItemCountDelta(dataset_id=dataset_id, key=f"state:{s}", delta=n) for s, n in states.order_by()]
        gold = GoldLabel.objects.filter(dataset_id=dataset_id)
        labels = gold.values_list("label_id").annotate(n=Count("id"))
        rows += [ItemCountDelta(dataset_id=dataset_id, key=f"gold:{label}", delta=n) for label, n in labels.order_by()]
        imported = gold.filter(origin="import", item__queue_state="done").count()
        if imported:
            rows.append(ItemCountDelta(dataset_id=dataset_id, key="labelled_at_import", delta=imported))
    ItemCountDelta.objects.bulk_create(rows, batch_size=1000)


def forget_counts(apps, schema_editor):
    apps.get_model("annotations", "ItemCountDelta").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("annotations", "0006_item_count_deltas")]

    operations = [migrations.RunPython(count_from_items, forget_counts)]
