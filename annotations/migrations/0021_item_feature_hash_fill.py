"""Fill Item.feature_hash (0020) for the items imported before it existed, a chunk at a time.

Each dataset's items are read in id order, CHUNK at a time (bounded memory,
and each UPDATE a short statement), hashed with the import's canonical form
(annotations/feature_hash.py) and written back with one statement per chunk:
UPDATE ... FROM unnest(...) on PostgreSQL, executemany on SQLite (bulk_update's
CASE per row cost about 6 ms a row; see annotations' label-issue reopening).
Not atomic: each chunk's UPDATE commits on its own, so a million items are not
one long transaction, and a run that stops half way resumes where it stopped
(only NULL hashes are read). Reversing it leaves the hashes: 0020's reversal
drops the column.
"""

from django.db import migrations

from annotations.feature_hash import feature_hash_of

CHUNK = 5_000


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Dataset, Feature, Item = (apps.get_model("annotations", name) for name in ("Dataset", "Feature", "Item"))
    connection = schema_editor.connection
    q = connection.ops.quote_name
    table = q(Item._meta.db_table)
    for dataset_id in Dataset.objects.order_by("pk").values_list("pk", flat=True):
        features = list(Feature.objects.filter(dataset_id=dataset_id).order_by("position").values_list("name", "dtype"))
        after = 0
        while True:
            rows = list(
                Item.objects.filter(dataset_id=dataset_id, pk__gt=after, feature_hash__isnull=True)
                .order_by("pk")
                .values_list("pk", "values")[:CHUNK]
            )
            if not rows:
                break
            after = rows[-1][0]
            hashes = [(feature_hash_of(values or {}, features), pk) for pk, values in rows]
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute(
                        f"UPDATE {table} SET feature_hash = u.h FROM unnest(%s::bigint[], %s::text[]) AS u(id, h) "
                        f"WHERE {table}.id = u.id",
                        [[pk for _, pk in hashes], [h for h, _ in hashes]],
                    )
                else:
                    cursor.executemany(f"UPDATE {table} SET feature_hash = %s WHERE id = %s", hashes)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("annotations", "0020_item_feature_hash")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
