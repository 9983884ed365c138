"""Run a model version over items and record its predictions.

When the version is the champion, its prediction is also copied onto each
open item (label, confidence, queue priority), which is what the review queue
and the review card read.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from annotations.models import Item, LabelClass
from governance.audit import audit_record
from models_app.data import feature_specs, frame_for_items
from models_app.ml.artifacts import load_model
from models_app.ml.baseline import predict_proba
from models_app.models import ModelVersion, Prediction

CHUNK = 2000
logger = logging.getLogger(__name__)


def artifact_path(model_version: ModelVersion) -> Path:
    return Path(settings.ARTIFACT_ROOT) / model_version.artifact_path


def model_load(model_version: ModelVersion) -> object:
    """Load the artifact after checking its sha256 against the registry."""
    return load_model(artifact_path(model_version), model_version.artifact_sha256)


def predictions_create(*, model_version: ModelVersion, item_ids: list[int], update_items: bool) -> int:
    """Predict `item_ids` with `model_version`; returns how many predictions were written.

    Idempotent: an item that already has a prediction from this version keeps it.
    Each chunk is one transaction with one audit event.
    """
    if not item_ids:
        return 0
    model = model_load(model_version)
    dataset = model_version.dataset
    specs = feature_specs(dataset)
    classes = list(model_version.class_names)
    label_ids = dict(LabelClass.objects.filter(dataset=dataset).values_list("name", "pk"))
    written = 0
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        proba = predict_proba(model, frame_for_items(chunk, specs), classes)
        with transaction.atomic():
            existing = set(
                Prediction.objects.filter(model_version=model_version, item_id__in=chunk).values_list(
                    "item_id", flat=True
                )
            )
            new = []
            for item_id, row in zip(chunk, proba, strict=True):
                if item_id in existing:
                    continue
                best = int(row.argmax())
                new.append(
                    Prediction(
                        item_id=item_id,
                        model_version=model_version,
                        label_id=label_ids[classes[best]],
                        confidence=float(row[best]),
                        probabilities={name: round(float(p), 6) for name, p in zip(classes, row, strict=True)},
                    )
                )
            Prediction.objects.bulk_create(new, batch_size=CHUNK)
            written += len(new)
            if update_items:
                # Only the champion's predictions are shown to reviewers; if a
                # promotion happened while this ran, stop copying (the new
                # champion's own task takes over).
                still_champion = ModelVersion.objects.filter(
                    pk=model_version.pk, stage=ModelVersion.Stage.CHAMPION
                ).exists()
                if not still_champion:
                    update_items = False
                else:
                    _copy_onto_items(model_version, chunk)
            audit_record(
                actor=None,
                action="predictions.created",
                obj=model_version,
                object_type="model_version",
                dataset_id=dataset.pk,
                after={
                    "model_version": model_version.version,
                    "items": len(chunk),
                    "new_predictions": len(new),
                    "shown_to_reviewers": update_items,
                },
            )
    return written


def _copy_onto_items(model_version: ModelVersion, item_ids: list[int]) -> None:
    predictions = Prediction.objects.filter(model_version=model_version, item_id__in=item_ids)
    items = {item.pk: item for item in Item.objects.filter(pk__in=item_ids, queue_state=Item.QueueState.OPEN)}
    for prediction in predictions:
        item = items.get(prediction.item_id)
        if item is None:
            continue
        item.prediction_id = prediction.pk
        item.predicted_label_id = prediction.label_id
        item.predicted_confidence = prediction.confidence
        item.predicted_probabilities = prediction.probabilities
        item.predicted_by_version = model_version.version
        item.queue_priority = prediction.confidence
    Item.objects.bulk_update(
        items.values(),
        [
            "prediction_id",
            "predicted_label",
            "predicted_confidence",
            "predicted_probabilities",
            "predicted_by_version",
            "queue_priority",
        ],
        batch_size=500,
    )


def predictions_refresh(*, dataset_id: int, model_version_id: int | None = None, batch_id: int | None = None) -> int:
    """The champion predicts the open items (of one import, or all) that do not show its prediction yet.

    Does nothing when the champion changed since the refresh was asked for
    (`model_version_id`): the new champion's own refresh takes over.
    """
    champion = ModelVersion.objects.filter(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    if champion is None or (model_version_id is not None and champion.pk != model_version_id):
        logger.info("Dataset %s: champion changed or missing; no predictions refresh.", dataset_id)
        return 0
    item_ids = open_item_ids(dataset_id, batch_id, stale_for_version=champion.version)
    return predictions_create(model_version=champion, item_ids=item_ids, update_items=True)


def open_item_ids(dataset_id: int, batch_id: int | None = None, stale_for_version: int | None = None) -> list[int]:
    """Open items of a dataset (or of one import), optionally only those not showing `stale_for_version`."""
    queryset = Item.objects.filter(dataset_id=dataset_id, queue_state=Item.QueueState.OPEN)
    if batch_id is not None:
        queryset = queryset.filter(batch_id=batch_id)
    if stale_for_version is not None:
        queryset = queryset.filter(Q(predicted_by_version__isnull=True) | ~Q(predicted_by_version=stale_for_version))
    return list(queryset.order_by("pk").values_list("pk", flat=True))
