"""The nodes of the lineage graph (governance/lineage.py): one small constructor per kind of record.

A node is what the lineage page and its JSON show of one record: its kind and id,
a label people recognise, a few key facts (JSON-ready values) and the URL of its
own lineage page (or, for records without one, of the page that shows them).
No constructor reads the database: each takes a record the walk already fetched,
with whatever it needs already joined, so a section costs one query however many
nodes it holds.

No item's feature values appear here: the item's node carries its provenance
(file, line, row hash, state) and links to the item history, which logs the read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from annotations.models import GoldLabel, ImportBatch, Item, Review
from governance.models import PromotionRequest
from models_app.models import DatasetSnapshot, Evaluation, ModelVersion, Prediction, SnapshotLabel, TrainingRun

# The kinds a lineage page can start from, as they appear in its URL.
ITEM = "item"
PREDICTION = "prediction"
REVIEW = "review"
GOLD_LABEL = "gold-label"
SNAPSHOT = "snapshot"
TRAINING_RUN = "training-run"
MODEL_VERSION = "model-version"
PROMOTION = "promotion"
KINDS = (ITEM, PREDICTION, REVIEW, GOLD_LABEL, SNAPSHOT, TRAINING_RUN, MODEL_VERSION, PROMOTION)


@dataclass(frozen=True)
class Node:
    kind: str
    id: int
    label: str
    url: str
    facts: dict[str, Any] = field(default_factory=dict)
    page_url: str = ""  # the record's own page (item history, model card, promotion detail…), when it has one

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "url": self.url,
            "page_url": self.page_url,
            "facts": self.facts,
        }


def lineage_url(kind: str, pk: int) -> str:
    return reverse("governance:lineage", args=[kind, pk])


def item_node(item: Item) -> Node:
    return Node(
        ITEM,
        item.pk,
        f"Item {item.pk} (line {item.source_row} of {item.source_file})",
        lineage_url(ITEM, item.pk),
        {
            "state": item.queue_state,
            "source_file": item.source_file,
            "source_row": item.source_row,
            "observed_at": item.observed_at,
            "row_sha256": item.content_hash,
            "import_batch": item.batch_id,
        },
        # Auditors only; the history logs that its data was read (this page shows none of it).
        page_url=reverse("governance:item_history", args=[item.pk]),
    )


def batch_node(batch: ImportBatch) -> Node:
    url = reverse("annotations:batch_detail", args=[batch.dataset_id, batch.pk])
    return Node(
        "import-batch",
        batch.pk,
        f"Import {batch.pk}: {batch.file_name}",
        url,
        {
            "file_name": batch.file_name,
            "file_sha256": batch.file_sha256,
            "purpose": batch.purpose,
            "status": batch.status,
            "rows_imported": batch.rows_imported,
            "uploaded_at": batch.uploaded_at,
        },
        page_url=url,
    )


def prediction_node(prediction: Prediction) -> Node:
    """Precondition: model_version and label joined."""
    version = prediction.model_version
    return Node(
        PREDICTION,
        prediction.pk,
        f"v{version.version} predicted {prediction.label.name} ({prediction.confidence:.0%})",
        lineage_url(PREDICTION, prediction.pk),
        {
            "model_version": version.version,
            "model_version_id": version.pk,
            "label": prediction.label.name,
            "confidence": round(prediction.confidence, 4),
            "item": prediction.item_id,
            "created_at": prediction.created_at,
        },
    )


def review_node(review: Review) -> Node:
    """Precondition: reviewer and label joined. Why the item was in the queue: strategy and score."""
    answer = f"{review.decision} {review.label.name}" if review.label else review.decision
    return Node(
        REVIEW,
        review.pk,
        f"Review {review.pk}: {review.reviewer.get_username()} — {answer}",
        lineage_url(REVIEW, review.pk),
        {
            "reviewer": review.reviewer.get_username(),
            "decision": review.decision,
            "label": review.label.name if review.label else None,
            "mode": review.mode,
            "guideline_version": review.guideline_version,
            "selection_strategy": review.selection_strategy,
            "selection_score": review.selection_score,
            "shown_prediction": review.shown_prediction_id,
            "reason_code": review.reason_code,
            "reason": review.reason,
            "item": review.item_id,
            "created_at": review.created_at,
        },
    )


def gold_label_node(gold: GoldLabel) -> Node:
    """Precondition: label joined."""
    return Node(
        GOLD_LABEL,
        gold.pk,
        f"Gold label {gold.label.name} ({gold.get_origin_display().lower()})",
        lineage_url(GOLD_LABEL, gold.pk),
        {
            "label": gold.label.name,
            "origin": gold.origin,
            "review": gold.review_id,
            "item": gold.item_id,
            "updated_at": gold.updated_at,
        },
    )


def snapshot_node(snapshot: DatasetSnapshot) -> Node:
    return Node(
        SNAPSHOT,
        snapshot.pk,
        f"Snapshot {snapshot.pk} ({snapshot.label_count} labels)",
        lineage_url(SNAPSHOT, snapshot.pk),
        {
            "label_count": snapshot.label_count,
            "content_sha256": snapshot.content_hash,
            "frozen_at": snapshot.created_at,
        },
        page_url=reverse("governance:datasheet", args=[snapshot.pk]),
    )


def snapshot_label_node(row: SnapshotLabel) -> Node:
    """One labelled item of a snapshot, as frozen. Precondition: label joined (not the item: its id is enough)."""
    return Node(
        ITEM,
        row.item_id,
        f"Item {row.item_id} as {row.label.name}",
        lineage_url(ITEM, row.item_id),
        {"label": row.label.name, "gold_label": row.gold_label_id, "review": row.review_id},
    )


def run_node(run: TrainingRun) -> Node:
    url = reverse("models_app:run_detail", args=[run.pk])
    return Node(
        TRAINING_RUN,
        run.pk,
        f"Training run {run.pk} ({run.status})",
        lineage_url(TRAINING_RUN, run.pk),
        {
            "status": run.status,
            "trigger": run.trigger,
            "algorithm": run.algorithm,
            "seed": run.seed,
            "snapshot": run.snapshot_id,
            "requested_at": run.requested_at,
            "finished_at": run.finished_at,
        },
        page_url=url,
    )


def version_node(version: ModelVersion) -> Node:
    return Node(
        MODEL_VERSION,
        version.pk,
        f"Model v{version.version} ({version.stage})",
        lineage_url(MODEL_VERSION, version.pk),
        {
            "version": version.version,
            "stage": version.stage,
            "algorithm": version.algorithm,
            "artifact_sha256": version.artifact_sha256,
            "training_run": version.training_run_id,
            "snapshot": version.snapshot_id,
            "created_at": version.created_at,
        },
        page_url=reverse("governance:model_card", args=[version.pk]),
    )


def evaluation_node(evaluation: Evaluation, *, version_number: int | None) -> Node:
    metrics = evaluation.metrics or {}
    who = f"v{version_number}" if version_number is not None else f"version {evaluation.model_version_id}"
    return Node(
        "evaluation",
        evaluation.pk,
        f"{who} as {evaluation.role} on {evaluation.holdout_size} holdout rows",
        reverse("models_app:run_detail", args=[evaluation.training_run_id]),
        {
            "model_version_id": evaluation.model_version_id,
            "role": evaluation.role,
            "training_run": evaluation.training_run_id,
            "holdout_size": evaluation.holdout_size,
            "holdout_sha256": evaluation.holdout_hash,
            "accuracy": metrics.get("accuracy"),
            "created_at": evaluation.created_at,
        },
    )


def promotion_node(request: PromotionRequest, *, version_number: int, record_hash_now: str | None) -> Node:
    """A promotion or rollback decision with its signature. Precondition: requested_by, decided_by and
    signature joined. `record_hash_now`: the version's record hash today (None: not computed), so a
    signature over a record that has since changed shows as not matching."""
    signature = request.signature
    facts: dict[str, Any] = {
        "kind": request.kind,
        "status": request.status,
        "model_version": version_number,
        "requested_by": request.requested_by.get_username(),
        "requested_at": request.requested_at,
        "reason": request.reason,
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "decided_at": request.decided_at,
        "decision_reason": request.decision_reason,
        "override_reason": request.override_reason,
        "signed_by": signature.printed_name if signature else None,
        "signature_meaning": signature.meaning if signature else None,
        "signed_at": signature.signed_at if signature else None,
        "signed_record_sha256": signature.record_hash if signature else None,
        "signature_matches_record_now": (
            signature.record_hash == record_hash_now if signature and record_hash_now is not None else None
        ),
    }
    return Node(
        PROMOTION,
        request.pk,
        f"{request.get_kind_display()} #{request.pk} of v{version_number}: {request.status}",
        lineage_url(PROMOTION, request.pk),
        facts,
        page_url=reverse("governance:promotion_detail", args=[request.pk]),
    )


def predicted_item_node(*, item_id: int, version_number: int, label: str, confidence: float) -> Node:
    return Node(
        ITEM,
        item_id,
        f"Item {item_id}",
        lineage_url(ITEM, item_id),
        {"predicted_by": f"v{version_number}", "label": label, "confidence": round(confidence, 4)},
    )
