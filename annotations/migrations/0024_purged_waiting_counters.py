"""Data: count the items retention purged while they waited (annotations/counters.py, `purged:<state>`).

Purges from here on record these counters in their own transaction; this counts,
once, those made before the counter existed. Reversing deletes the rows.
"""

from django.db import migrations
from django.db.models import Count

WAITING_STATES = ("open", "adjudicate")  # annotations.counters.WAITING_STATES when this was written


def count_purged(apps, schema_editor):
    Item = apps.get_model("annotations", "Item")
    ItemCountDelta = apps.get_model("annotations", "ItemCountDelta")
    purged = Item.objects.filter(purged_at__isnull=False, queue_state__in=WAITING_STATES)
    rows = [
        ItemCountDelta(dataset_id=dataset_id, key=f"purged:{state}", delta=n)
        for dataset_id, state, n in purged.values_list("dataset_id", "queue_state").annotate(n=Count("id")).order_by()
    ]
    ItemCountDelta.objects.bulk_create(rows, batch_size=1000)


def forget_purged(apps, schema_editor):
    apps.get_model("annotations", "ItemCountDelta").objects.filter(key__startswith="purged:").delete()


class Migration(migrations.Migration):
    dependencies = [("annotations", "0023_item_purge_and_dataset_retention")]

    operations = [migrations.RunPython(count_purged, forget_purged)]
