"""Exports: a dataset's items (with gold labels and the champion's prediction), its reviews, or
the gold labels a snapshot froze, as CSV, JSONL or Parquet (issue 7, point 4).

Rows are read with keyset pagination over the primary key (a constant-cost query
per page, however far in) and written by models_app/export_formats.py a chunk at a
time, so a million rows are never held in memory.

The "import file" kind writes exactly the columns an import reads (external_id,
the features, label, observed_at), so the file loads into a dataset with the same
schema and gives back the same items, values, times and gold labels; the items
kind carries predictions and provenance beside them, which an import refuses.

`export_open` is the service: it checks nothing about the user (the view's
selector did), records the export as an audit event in its own transaction —
who, what, which format, and the hash of the labels it reflects (the snapshot's
content hash, or for a live dataset the hash of its gold labels at that moment,
computed by the same function snapshots use) — and returns an `Export` whose
rows the caller streams. Exports change nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotations.label_studio import item_task
from annotations.models import Dataset, GoldLabel, Item, Review
from governance.audit import audit_record
from models_app.data import labels_hash
from models_app.export_formats import ExportFormat
from models_app.models import DatasetSnapshot, SnapshotLabel

PAGE = 2000
ID_COLUMN = "external_id"  # the import's id column, so an items export re-imports
_FEATURE_TYPES = {"float": "float", "integer": "int", "boolean": "bool", "category": "string"}


class ExportKind(StrEnum):
    ITEMS = "items"
    IMPORT_FILE = "importfile"  # exactly the import's columns: re-imports into a dataset with the same schema
    REVIEWS = "reviews"
    SNAPSHOT = "snapshot"
    LABEL_STUDIO = "labelstudio"  # Label Studio's JSON tasks (data + predictions + annotations), whatever the format


@dataclass(frozen=True)
class Export:
    """What to stream: the columns, their types, the rows, and what the audit trail says it reflects."""

    kind: ExportKind
    fmt: ExportFormat
    columns: list[str]
    types: dict[str, str]
    rows: Iterator[dict[str, Any]]
    labels_hash: str
    file_name: str


def _keyset(queryset: Any, page: int = PAGE) -> Iterator[Any]:
    """Every row of `queryset` in primary-key order, one page query at a time."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk")[:page])
        if not rows:
            return
        yield from rows
        last = rows[-1].pk


def _features(dataset: Dataset) -> list[tuple[str, str]]:
    return [(f.name, _FEATURE_TYPES.get(f.dtype, "string")) for f in dataset.features.order_by("position")]


def _item_rows(dataset: Dataset, features: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    items = Item.objects.filter(dataset=dataset).select_related("gold_label__label", "predicted_label")
    for item in _keyset(items):
        gold = getattr(item, "gold_label", None)
        row = {ID_COLUMN: item.external_id, "observed_at": item.observed_at}
        row.update(_feature_values(item.values, features))
        row.update(
            {
                "label": gold.label.name if gold else None,
                "label_origin": gold.origin if gold else None,
                "queue_state": item.queue_state,
                "source_file": item.source_file,
                "source_row": item.source_row,
                "content_sha256": item.content_hash,
                "predicted_label": item.predicted_label.name if item.predicted_label else None,
                "predicted_confidence": item.predicted_confidence,
                "predicted_by_version": item.predicted_by_version,
            }
        )
        yield row


def _feature_values(values: dict[str, Any], features: list[tuple[str, str]]) -> dict[str, Any]:
    """The item's value for each feature, a float feature's always as a float.

    PostgreSQL's jsonb hands back a whole float written with an exponent (1e+16 and
    up) as an integer ("10000000000000000"); float() of it is the stored double
    exactly, and a Parquet float column refuses an integer past 2**63.
    """
    out = {}
    for name, kind in features:
        value = values.get(name)
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[name] = value
    return out


def _import_file_rows(dataset: Dataset, features: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """Every item as a row of an import file: its id, feature values, gold label (None if none) and time."""
    items = Item.objects.filter(dataset=dataset).select_related("gold_label__label")
    for item in _keyset(items):
        gold = getattr(item, "gold_label", None)
        row = {ID_COLUMN: item.external_id}
        row.update(_feature_values(item.values, features))
        row.update({"label": gold.label.name if gold else None, "observed_at": item.observed_at})
        yield row


_ITEM_EXTRA = {
    "label": "string",
    "label_origin": "string",
    "queue_state": "string",
    "source_file": "string",
    "source_row": "int",
    "content_sha256": "string",
    "predicted_label": "string",
    "predicted_confidence": "float",
    "predicted_by_version": "int",
}

_REVIEW_COLUMNS = {
    "review_id": "int",
    ID_COLUMN: "string",
    "reviewer": "string",
    "created_at": "timestamp",
    "decision": "string",
    "label": "string",
    "reason": "string",
    "reason_code": "string",
    "flagged": "bool",
    "mode": "string",
    "shown_prediction_id": "int",
    "shown_label": "string",
    "shown_confidence": "float",
    "selection_strategy": "string",
    "selection_score": "float",
    "guideline_version": "string",
    "supersedes_review_id": "int",
    "time_on_item_ms": "int",
}


def _review_rows(dataset: Dataset) -> Iterator[dict[str, Any]]:
    reviews = Review.objects.filter(item__dataset=dataset).select_related("item", "reviewer", "label", "shown_label")
    for review in _keyset(reviews):
        yield {
            "review_id": review.pk,
            ID_COLUMN: review.item.external_id,
            "reviewer": review.reviewer.get_username(),
            "created_at": review.created_at,
            "decision": review.decision,
            "label": review.label.name if review.label else None,
            "reason": review.reason,
            "reason_code": review.reason_code,
            "flagged": review.flagged,
            "mode": review.mode,
            "shown_prediction_id": review.shown_prediction_id,
            "shown_label": review.shown_label.name if review.shown_label else None,
            "shown_confidence": review.shown_confidence,
            "selection_strategy": review.selection_strategy,
            "selection_score": review.selection_score,
            "guideline_version": review.guideline_version,
            # a revision, an undo ("withdrawn") or a blind answer's reveal replaces this earlier review
            "supersedes_review_id": review.supersedes_id,
            "time_on_item_ms": review.time_on_item_ms,
        }


def _snapshot_rows(snapshot: DatasetSnapshot, features: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    labels = SnapshotLabel.objects.filter(snapshot=snapshot).select_related("item", "label")
    for frozen in _keyset(labels):
        row = {ID_COLUMN: frozen.item.external_id, "observed_at": frozen.item.observed_at}
        row.update(_feature_values(frozen.item.values, features))
        row.update(
            {"label": frozen.label.name, "review_id": frozen.review_id, "content_sha256": frozen.item.content_hash}
        )
        yield row


def _label_studio_tasks(dataset: Dataset, feature_names: list[str]) -> Iterator[dict[str, Any]]:
    """Every item as a Label Studio task, a page of items (and one query for their reviews) at a time."""
    items = Item.objects.filter(dataset=dataset).select_related("gold_label__label", "predicted_label")
    last = 0
    while True:
        page = list(items.filter(pk__gt=last).order_by("pk")[:PAGE])
        if not page:
            return
        reviews: dict[int, list[Review]] = {}
        for review in (
            Review.objects.filter(item__in=page).select_related("label", "reviewer").order_by("created_at", "pk")
        ):
            reviews.setdefault(review.item_id, []).append(review)
        for item in page:
            yield item_task(item, feature_names, reviews.get(item.pk, []))
        last = page[-1].pk


def _live_labels_hash(dataset: Dataset) -> str:
    """The gold labels as they stand, hashed the way a snapshot hashes its labels."""
    rows = (
        GoldLabel.objects.filter(dataset=dataset)
        .order_by("item_id")
        .values_list("item_id", "item__content_hash", "label__name")
        .iterator(chunk_size=PAGE)
    )
    return labels_hash(rows)


def export_open(
    *,
    dataset: Dataset,
    user: AbstractBaseUser,
    kind: ExportKind,
    fmt: ExportFormat,
    snapshot: DatasetSnapshot | None = None,
) -> Export:
    """Record the export (audit event, committed) and return its rows to stream.

    Precondition: the caller checked that `user` may export `dataset`, and that
    `snapshot`, when given, belongs to it. ValueError for a snapshot export
    without a snapshot.
    """
    features = _features(dataset)
    feature_types = dict(features)
    if kind == ExportKind.SNAPSHOT:
        if snapshot is None:
            raise ValueError("A snapshot export needs a snapshot.")
        reflects = snapshot.content_hash
        columns = [ID_COLUMN, "observed_at", *feature_types, "label", "review_id", "content_sha256"]
        types = {"observed_at": "timestamp", **feature_types, "review_id": "int"}
        rows = _snapshot_rows(snapshot, features)
        name = f"{dataset.slug}-snapshot-{snapshot.pk}"
    elif kind == ExportKind.LABEL_STUDIO:
        reflects = _live_labels_hash(dataset)
        columns, types, rows = [], {}, _label_studio_tasks(dataset, list(feature_types))
        name = f"{dataset.slug}-label-studio"
        fmt = ExportFormat.JSON
    elif kind == ExportKind.IMPORT_FILE:
        reflects = _live_labels_hash(dataset)
        columns = [ID_COLUMN, *feature_types, "label", "observed_at"]
        types = {**feature_types, "label": "string", "observed_at": "timestamp"}
        rows = _import_file_rows(dataset, features)
        name = f"{dataset.slug}-import-file"
    elif kind == ExportKind.REVIEWS:
        reflects = _live_labels_hash(dataset)
        columns, types, rows = list(_REVIEW_COLUMNS), dict(_REVIEW_COLUMNS), _review_rows(dataset)
        name = f"{dataset.slug}-reviews"
    else:
        reflects = _live_labels_hash(dataset)
        columns = [ID_COLUMN, "observed_at", *feature_types, *_ITEM_EXTRA]
        types = {"observed_at": "timestamp", **feature_types, **_ITEM_EXTRA}
        rows = _item_rows(dataset, features)
        name = f"{dataset.slug}-items"
    with transaction.atomic():
        audit_record(
            actor=user,
            action="export.created",
            obj=snapshot,
            object_type="dataset_snapshot" if snapshot else "dataset",
            object_id=snapshot.pk if snapshot else dataset.pk,
            dataset_id=dataset.pk,
            after={"kind": str(kind), "format": str(fmt), "labels_hash": reflects},
        )
    return Export(
        kind=kind,
        fmt=fmt,
        columns=columns,
        types=types,
        rows=rows,
        labels_hash=reflects,
        file_name=f"{name}-{reflects[:12]}.{fmt}",
    )
