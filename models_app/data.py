"""Turn a dataset's items and gold labels into the plain frames models_app/ml/ expects."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import pandas as pd
from django.db import connection

from annotations.models import Dataset, Feature, GoldLabel, Item
from models_app.ml.baseline import FeatureSpec, frame_from_rows


def feature_specs(dataset: Dataset, *, with_text: bool = False) -> list[FeatureSpec]:
    """The model's inputs: numbers, yes/no and categories, and free text too for a caller whose pipeline
    reads it (`with_text`: label-issue scoring; text model families take theirs from model_runtime.model_spec)."""
    features = dataset.features.order_by("position")
    if not with_text:
        features = features.exclude(dtype=Feature.Dtype.TEXT)
    return [FeatureSpec(name=f.name, dtype=f.dtype, categories=tuple(f.categories or ())) for f in features]


def class_names(dataset: Dataset) -> list[str]:
    return list(dataset.label_classes.order_by("position").values_list("name", flat=True))


def frame_for_items(item_ids: list[int], specs: list[FeatureSpec], chunk: int = 5000) -> pd.DataFrame:
    """Feature frame for items, in the order of `item_ids`."""
    if connection.vendor == "postgresql" and item_ids and all(map(str.isidentifier, [s.name for s in specs])):
        return _frame_postgres(item_ids, specs)
    values_by_id: dict[int, dict] = {}
    for start in range(0, len(item_ids), chunk):
        values_by_id.update(_values_by_id(item_ids[start : start + chunk]))
    return _frame_from_rows([values_by_id[pk] for pk in item_ids], specs)


# Feature types whose values stay strings in a model's frame; every other type is a float column.
_TEXTUAL = ("category", "text")


def _frame_from_rows(rows: list[dict], specs: list) -> pd.DataFrame:
    """baseline.frame_from_rows, with free text kept as text (a text model reads it; issue 9)."""
    text = [spec.name for spec in specs if spec.dtype == "text"]
    frame = frame_from_rows(rows, [spec if spec.dtype != "text" else _AsCategory(spec.name) for spec in specs])
    for name in text:
        frame[name] = frame[name].astype("object")
    return frame


class _AsCategory:
    """A text feature passed to frame_from_rows as a category (kept as objects, not cast to numbers)."""

    dtype = "category"
    categories: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name


def _frame_postgres(item_ids: list[int], specs: list[FeatureSpec]) -> pd.DataFrame:
    """The frame, read column-wise: PostgreSQL takes each feature out of the JSON and
    sends CSV through COPY, which pandas' C reader parses. No Python object per cell.

    The ids go in as one array parameter; the frame is put back in `item_ids` order.
    """
    columns = ", ".join(f"item.values ->> %s AS c{i}" for i in range(len(specs)))
    select = f"SELECT item.id, {columns} FROM {Item._meta.db_table} AS item WHERE item.id = ANY(%s)"
    params = [spec.name for spec in specs] + [list(item_ids)]
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        query = cursor.mogrify(select, params)  # COPY takes no parameters: bind them first
        with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    dtypes = {f"c{i}": ("object" if spec.dtype in _TEXTUAL else "float64") for i, spec in enumerate(specs)}
    frame = pd.read_csv(
        buffer,
        header=None,
        names=["id", *dtypes],
        dtype={"id": "int64", **dtypes},
        keep_default_na=False,
        na_values={name: [""] for name in dtypes},
    )
    frame = frame.set_index("id").reindex(item_ids)
    frame.columns = [spec.name for spec in specs]
    return frame.reset_index(drop=True)


def _values_by_id(ids: list[int]) -> dict[int, dict]:
    """`values` of the given items. A dense run of ids (a prediction chunk) is read as an id
    range and filtered here: a range scan costs the database and the ORM far less than an
    IN list of thousands of parameters."""
    low, high = min(ids), max(ids)
    if len(ids) * 2 >= high - low + 1:
        wanted = set(ids)
        rows = Item.objects.filter(pk__range=(low, high)).values_list("pk", "values")
        return {pk: values for pk, values in rows if pk in wanted}
    return dict(Item.objects.filter(pk__in=ids).values_list("pk", "values"))


def holdout_labels(dataset: Dataset) -> list[tuple[int, str, str]]:
    """(item id, item content hash, label) for the sequestered holdout, in item order."""
    return list(
        # Not items whose data retention removed (nothing left to predict from).
        GoldLabel.objects.filter(
            dataset=dataset, item__queue_state=Item.QueueState.HOLDOUT, item__purged_at__isnull=True
        )
        .order_by("item_id")
        .values_list("item_id", "item__content_hash", "label__name")
    )


def labels_hash(rows: Iterable[tuple[int, str, str]]) -> str:
    digest = hashlib.sha256()
    for item_id, content_hash, label in rows:
        digest.update(f"{item_id}\t{content_hash}\t{label}\n".encode())
    return digest.hexdigest()
