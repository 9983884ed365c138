"""Turn a dataset's items and gold labels into the plain frames models_app/ml/ expects."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from annotations.models import Dataset, GoldLabel, Item
from models_app.ml.baseline import FeatureSpec, frame_from_rows


def feature_specs(dataset: Dataset) -> list[FeatureSpec]:
    return [
        FeatureSpec(name=f.name, dtype=f.dtype, categories=tuple(f.categories or ()))
        for f in dataset.features.order_by("position")
    ]


def class_names(dataset: Dataset) -> list[str]:
    return list(dataset.label_classes.order_by("position").values_list("name", flat=True))


def frame_for_items(item_ids: list[int], specs: list[FeatureSpec], chunk: int = 5000) -> pd.DataFrame:
    """Feature frame for items, in the order of `item_ids`."""
    values_by_id: dict[int, dict] = {}
    for start in range(0, len(item_ids), chunk):
        ids = item_ids[start : start + chunk]
        values_by_id.update(Item.objects.filter(pk__in=ids).values_list("pk", "values"))
    return frame_from_rows([values_by_id[pk] for pk in item_ids], specs)


def holdout_labels(dataset: Dataset) -> list[tuple[int, str, str]]:
    """(item id, item content hash, label) for the sequestered holdout, in item order."""
    return list(
        GoldLabel.objects.filter(dataset=dataset, item__queue_state=Item.QueueState.HOLDOUT)
        .order_by("item_id")
        .values_list("item_id", "item__content_hash", "label__name")
    )


def labels_hash(rows: Iterable[tuple[int, str, str]]) -> str:
    digest = hashlib.sha256()
    for item_id, content_hash, label in rows:
        digest.update(f"{item_id}\t{content_hash}\t{label}\n".encode())
    return digest.hexdigest()
