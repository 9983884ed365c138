"""An import's foreign keys, checked once per batch instead of once per row (PostgreSQL, where allowed).

PostgreSQL checks a foreign key with a trigger per inserted row and key: for
100,000 items with labels that is about 470,000 lookups (item: dataset, batch,
and two NULL keys; gold label: item, dataset, label, and a NULL review), 6 of
the 12 s the database spent on such an import in our measurements, whether at
COMMIT, at `SET CONSTRAINTS ALL IMMEDIATE` or as each COPY ends.

But an import's rows reference almost nothing: one dataset, one batch, a few
label classes, and items inserted by the same transaction. So, where the
database role may set `session_replication_role` (a superuser, or PostgreSQL
15+ with `GRANT SET ON PARAMETER session_replication_role`), the import's
INSERT/COPY statements run with it set to `replica`, which skips the per-row
triggers, and `references_check` then does what those triggers would have
done, for the batch at once and with the same locks: each referenced dataset,
batch and label row must exist and is locked FOR KEY SHARE until COMMIT (so it
cannot be deleted before the rows are committed). A row found missing raises
IntegrityError, which rolls the import back, as a failed trigger would.

No constraint is dropped, disabled or marked NOT VALID: every other write to
these tables is checked by its triggers as before, and the import falls back
to the triggers whenever the schema is not the one this module knows (a new
foreign key on Item or GoldLabel, a column default on one of the keys the
import leaves NULL, or any trigger of another kind on those tables, which
`replica` would also skip): `bypass_possible` says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection
from django.db.models import Model

from annotations.models import Dataset, GoldLabel, ImportBatch, Item, LabelClass, Review
from workflow_site.row_triggers import row_triggers_skippable


def _expected() -> dict[type[Model], dict[str, tuple[type[Model], bool]]]:
    """Per table, each foreign key -> (model it references, whether an import writes it; unwritten ones are NULL)."""
    return {
        Item: {
            "dataset": (Dataset, True),
            "batch": (ImportBatch, True),
            "leased_to": (get_user_model(), False),
            "predicted_label": (LabelClass, False),
        },
        GoldLabel: {
            "item": (Item, True),
            "dataset": (Dataset, True),
            "label": (LabelClass, True),
            "review": (Review, False),
        },
    }


def _unwritten_keys_null() -> bool:
    """The keys an import leaves unwritten are NULL in its rows: nullable, with no database default."""
    for model, keys in _expected().items():
        for name, (_, written) in keys.items():
            field = model._meta.get_field(name)
            if not written and not (field.null and not field.has_db_default()):
                return False
    return True


def bypass_possible() -> bool:
    """Whether this connection may skip the import's per-row foreign-key triggers (see the module docstring)."""
    expected = {model: {name: target for name, (target, _) in keys.items()} for model, keys in _expected().items()}
    return _unwritten_keys_null() and row_triggers_skippable(expected)


def references_check(*, dataset_id: int, batch_id: int, label_ids: Iterable[int]) -> None:
    """What the skipped triggers check, for a whole batch: its rows' references exist, locked until COMMIT.

    Precondition: the caller holds the dataset row (FOR NO KEY UPDATE, which
    also keeps it from being deleted) and wrote only rows whose item and gold
    label reference this dataset and batch, `label_ids`, the items it inserted
    itself (invisible to everyone else until COMMIT, so nobody can delete them),
    and NULL for every other key.
    """
    labels = sorted(set(label_ids))
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {q(Dataset._meta.db_table)} WHERE id = %s FOR KEY SHARE", [dataset_id]
        )  # held already (the precondition): a no-op that makes the check read as complete
        found_dataset = cursor.fetchone() is not None
        cursor.execute(f"SELECT 1 FROM {q(ImportBatch._meta.db_table)} WHERE id = %s FOR KEY SHARE", [batch_id])
        found_batch = cursor.fetchone() is not None
        found_labels: set[int] = set()
        if labels:
            cursor.execute(f"SELECT id FROM {q(LabelClass._meta.db_table)} WHERE id = ANY(%s) FOR KEY SHARE", [labels])
            found_labels = {row[0] for row in cursor.fetchall()}
    missing = [f"dataset {dataset_id}"] if not found_dataset else []
    missing += [f"import batch {batch_id}"] if not found_batch else []
    missing += [f"label class {label}" for label in labels if label not in found_labels]
    if missing:
        raise IntegrityError(f"The imported rows reference rows that no longer exist: {', '.join(missing)}.")
