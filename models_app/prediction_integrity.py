"""A prediction chunk's foreign keys, checked once per chunk instead of once per row (PostgreSQL, where allowed).

Each predicted item costs PostgreSQL four foreign-key lookups, fired at the
chunk's `SET CONSTRAINTS ALL IMMEDIATE`: the prediction's item, model version
and label, and the item's new predicted label. Measured with bench/predictions.py
(200,000 items, 30 features): 2.5 of the 14.1 s a refresh took, the second
largest cost after the item UPDATE. Yet a chunk references one model version,
a few label classes, and its own items. So, where the role may skip per-row
triggers (workflow_site/row_triggers.py), the chunk's COPY and UPDATE run with
them skipped and `prediction_references_check` does what the triggers would
have done, set-based and with the same locks:

- the model version exists (the writer already holds it FOR NO KEY UPDATE);
- each label class of the chunk exists, locked FOR KEY SHARE until COMMIT;
- each item a new prediction references exists and cannot be deleted before
  COMMIT: the UPDATE holds the open items it changed (a DELETE waits for that
  lock, then finds the committed predictions and fails, as with the triggers);
  the others are locked FOR KEY SHARE here, as the trigger would have.

A row found missing raises IntegrityError, which rolls the chunk back, as a
failed trigger would. `prediction_bypass_possible` keeps the triggers whenever
the schema is not the one this module knows: another foreign key on the
prediction or item tables, or a trigger of another kind on them, which
`replica` would skip too.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection
from django.db.models import Model

from annotations.models import Dataset, ImportBatch, Item, LabelClass
from models_app.models import ModelVersion, Prediction
from workflow_site.row_triggers import row_triggers_skippable


def _expected() -> dict[type[Model], dict[str, type[Model]]]:
    """Per table written, each foreign key and the model it references (the item UPDATE changes only
    predicted_label among its keys; an unchanged key fires no check, with or without the triggers)."""
    return {
        Prediction: {"item": Item, "model_version": ModelVersion, "label": LabelClass},
        Item: {
            "dataset": Dataset,
            "batch": ImportBatch,
            "leased_to": get_user_model(),
            "predicted_label": LabelClass,
        },
    }


def prediction_bypass_possible() -> bool:
    """Whether this connection may skip the chunk's per-row foreign-key triggers (see the module docstring)."""
    return row_triggers_skippable(_expected())


def prediction_references_check(
    *,
    model_version_id: int,
    label_ids: Iterable[int],
    inserted_item_ids: Iterable[int],
    updated_item_ids: Iterable[int],
) -> None:
    """What the skipped triggers check, for a whole chunk: its rows' references exist, locked until COMMIT.

    Precondition: the caller holds the model version row (FOR NO KEY UPDATE) and, in this transaction,
    inserted predictions only for `inserted_item_ids`, with this version and labels among `label_ids`,
    and updated the open items `updated_item_ids` (their predicted label among `label_ids`).
    """
    labels = sorted(set(label_ids))
    updated = set(updated_item_ids)
    others = sorted(set(inserted_item_ids) - updated)
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {q(ModelVersion._meta.db_table)} WHERE id = %s FOR KEY SHARE", [model_version_id]
        )  # held already (the precondition): a no-op that makes the check read as complete
        found_version = cursor.fetchone() is not None
        found_labels: set[int] = set()
        if labels:
            cursor.execute(f"SELECT id FROM {q(LabelClass._meta.db_table)} WHERE id = ANY(%s) FOR KEY SHARE", [labels])
            found_labels = {row[0] for row in cursor.fetchall()}
        found_items: set[int] = set()
        if others:
            cursor.execute(f"SELECT id FROM {q(Item._meta.db_table)} WHERE id = ANY(%s) FOR KEY SHARE", [others])
            found_items = {row[0] for row in cursor.fetchall()}
    missing = [] if found_version else [f"model version {model_version_id}"]
    missing += [f"label class {label}" for label in labels if label not in found_labels]
    gone = [item for item in others if item not in found_items]
    missing += [f"item {item}" for item in gone[:10]] + ([f"and {len(gone) - 10} more items"] if len(gone) > 10 else [])
    if missing:
        raise IntegrityError(f"The predictions reference rows that no longer exist: {', '.join(missing)}.")
