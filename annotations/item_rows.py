"""Items with their predicted label and import batch, from the rows of one SQL statement.

The queue's PostgreSQL claim (annotations/queue.py) leases an item and returns
it in the same statement, so a review step does not read the item again. The
statement's outer SELECT lists `item_select_columns(relation)`: every column
of an item-shaped relation (the rows an UPDATE … RETURNING gave back), then
those of its label and of its batch, left-joined by `item_joins(relation)`.
`items_from_rows` turns each row into an `Item` with `predicted_label` and
`batch` attached, as `select_related("predicted_label", "batch")` would
(workflow_site/sql_rows.py applies the ORM's field conversions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection

from annotations.models import Dataset, ImportBatch, Item, LabelClass
from workflow_site import sql_rows
from workflow_site.prepared_sql import prepared_cursor

_LABEL_ALIAS, _BATCH_ALIAS = "item_row_label", "item_row_batch"


def item_select_columns(relation: str) -> str:
    """The SELECT list: the item's columns from `relation`, then its label's, then its batch's."""
    return ", ".join(
        (
            sql_rows.columns(Item, relation),
            sql_rows.columns(LabelClass, _LABEL_ALIAS),
            sql_rows.columns(ImportBatch, _BATCH_ALIAS),
        )
    )


def item_joins(relation: str) -> str:
    """The joins that bring in the label and the batch of the items in `relation`."""
    return (
        f" LEFT JOIN {sql_rows.table(LabelClass)} {_LABEL_ALIAS} ON {_LABEL_ALIAS}.id = {relation}.predicted_label_id"
        f" LEFT JOIN {sql_rows.table(ImportBatch)} {_BATCH_ALIAS} ON {_BATCH_ALIAS}.id = {relation}.batch_id"
    )


def items_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[Item]:
    """Items (label and batch attached) from rows whose columns are `item_select_columns`'."""
    items = []
    for row in rows:
        item_values, label_values, batch_values, _ = sql_rows.split(row, Item, LabelClass, ImportBatch)
        item = sql_rows.build(Item, item_values)
        item.predicted_label = sql_rows.build_optional(LabelClass, label_values)
        item.batch = sql_rows.build_optional(ImportBatch, batch_values)
        items.append(item)
    return items


def item_lock_with_dataset(item_id: int) -> Item:
    """The item, its row locked until the transaction ends, with its dataset and predicted label attached.

    `Item.objects.select_for_update(of=("self",), no_key=True).select_related("dataset",
    "predicted_label").get(pk=item_id)` as one fixed statement (every answer runs it).
    Only the item's row is locked (FOR NO KEY UPDATE OF the item; SQLite locks
    the database for the transaction instead). Raises Item.DoesNotExist.
    """
    if not sql_rows.pk_in_range(Item, item_id):
        raise Item.DoesNotExist(f"No item {item_id}.")
    lock = ""
    if connection.features.has_select_for_update:
        lock = " " + connection.ops.for_update_sql(no_key=True, of=("i",))
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {sql_rows.columns(Item, 'i')}, {sql_rows.columns(Dataset, 'd')},"
            f" {sql_rows.columns(LabelClass, 'l')} FROM {sql_rows.table(Item)} i"
            f" JOIN {sql_rows.table(Dataset)} d ON d.id = i.dataset_id"
            f" LEFT JOIN {sql_rows.table(LabelClass)} l ON l.id = i.predicted_label_id"
            f" WHERE i.id = %s{lock}",
            [item_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Item.DoesNotExist(f"No item {item_id}.")
    item_values, dataset_values, label_values, _ = sql_rows.split(row, Item, Dataset, LabelClass)
    item = sql_rows.build(Item, item_values)
    item.dataset = sql_rows.build(Dataset, dataset_values)
    item.predicted_label = sql_rows.build_optional(LabelClass, label_values)
    return item
