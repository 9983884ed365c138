"""Writes for annotations: importing data and reviewing items.

Each service is one transaction and writes its audit event inside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotations.import_validation import FeatureRule, ParseResult, parse_import
from annotations.models import Dataset, GoldLabel, ImportBatch, Item, LabelClass, Review
from annotations.queue import selection_for
from annotations.signals import gold_labels_changed, items_imported, send_after_commit
from governance.audit import audit_record

_BULK_SIZE = 2000


class ImportRejected(Exception):
    """The file failed validation; no rows were written.

    `result` holds the row-level report; `batch` is the rejected ImportBatch that
    records the attempt (None only where no record could be written).
    """

    def __init__(self, result: ParseResult, batch: ImportBatch | None = None) -> None:
        super().__init__(f"{result.error_count} problem(s) in the file")
        self.result = result
        self.batch = batch


def item_content_hash(
    *, external_id: str, values: dict[str, Any], observed_at: datetime | None, label: str | None
) -> str:
    payload = {
        "external_id": external_id,
        "values": values,
        # UTC, as stored: the hash can be recomputed from the database row.
        "observed_at": observed_at.astimezone(UTC).isoformat() if observed_at else None,
        "label": label,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _existing_ids(dataset: Dataset, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for external_id, source_row in Item.objects.filter(dataset=dataset, external_id__in=chunk).values_list(
            "external_id", "batch__file_name"
        ):
            found[external_id] = source_row
    return found


def _check_existing_ids(dataset: Dataset, result: ParseResult) -> None:
    """Report every row whose id is already in the dataset (the caller holds the dataset row lock)."""
    clashes = _existing_ids(dataset, [row.external_id for row in result.rows])
    for row in result.rows:
        if row.external_id in clashes:
            result.add(
                row.line,
                "external_id",
                row.external_id,
                f"Id already exists in this dataset (imported from {clashes[row.external_id]}).",
            )


@dataclass(frozen=True)
class _Upload:
    """What was uploaded, by whom, into which dataset: recorded on the batch whatever the outcome."""

    dataset: Dataset
    user: AbstractBaseUser
    file_name: str
    data: bytes
    purpose: str

    def batch(self, **fields: Any) -> ImportBatch:
        return ImportBatch.objects.create(
            dataset=self.dataset,
            uploaded_by=self.user,
            file_name=self.file_name,
            file_sha256=hashlib.sha256(self.data).hexdigest(),
            file_size=len(self.data),
            purpose=self.purpose,
            **fields,
        )


def _import_batch_reject(upload: _Upload, result: ParseResult) -> ImportBatch:
    """Record a refused upload: a REJECTED batch holding the report, and its audit event; no items.

    Precondition: inside a transaction (audit_record refuses to run outside one).
    """
    batch = upload.batch(
        status=ImportBatch.Status.REJECTED,
        rows_total=result.rows_total,
        rows_imported=0,
        rows_rejected=result.rows_rejected,
        # The kept errors are capped in number and length (import_validation), so the record stays small.
        report={"errors": [error.as_dict() for error in result.errors], "error_count": result.error_count},
    )
    audit_record(
        actor=upload.user,
        action="import.rejected",
        obj=batch,
        object_type="import_batch",
        dataset_id=upload.dataset.pk,
        after={
            "file_name": batch.file_name,
            "file_sha256": batch.file_sha256,
            "file_size": batch.file_size,
            "purpose": upload.purpose,
            "rows_total": batch.rows_total,
            "rows_rejected": batch.rows_rejected,
            "error_count": result.error_count,
        },
    )
    return batch


def import_batch_create(
    *, dataset: Dataset, user: AbstractBaseUser, file_name: str, data: bytes, purpose: str
) -> ImportBatch:
    """Validate the whole file, then insert every row or none.

    When any row is bad, including ids that already exist in the dataset,
    writes no items or gold labels: it records the attempt as a REJECTED batch
    with the report and an `import.rejected` audit event, commits that, and
    raises ImportRejected (with the report and the batch). A purpose that is
    not one of ImportBatch.Purpose is the caller's mistake: ValidationError,
    nothing recorded.
    Side effect, after commit: `items_imported` is sent (models_app asks the
    champion to predict the new open items).
    """
    if purpose not in ImportBatch.Purpose.values:
        raise ValidationError({"purpose": f"Unknown purpose {purpose!r}."})
    features = list(dataset.features.order_by("position"))
    labels = {label.name: label for label in dataset.label_classes.all()}
    result = parse_import(
        data,
        features=[FeatureRule(f.name, f.dtype, tuple(f.categories or ())) for f in features],
        label_names=list(labels),
        require_label=purpose == ImportBatch.Purpose.HOLDOUT,
    )
    upload = _Upload(dataset=dataset, user=user, file_name=file_name[:255], data=data, purpose=purpose)
    if not result.ok:
        with transaction.atomic():
            batch = _import_batch_reject(upload, result)
        raise ImportRejected(result, batch)

    with transaction.atomic():
        # Imports into one dataset queue on its row, so the id check sees every
        # committed row and two uploads of the same ids cannot both pass it.
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset.pk)
        _check_existing_ids(dataset, result)
        if result.ok:
            return _import_batch_write(upload, result, labels)
        batch = _import_batch_reject(upload, result)
    raise ImportRejected(result, batch)


def _import_batch_write(upload: _Upload, result: ParseResult, labels: dict[str, LabelClass]) -> ImportBatch:
    """Insert the batch, its items and their gold labels, and audit it.

    Precondition: inside the transaction that holds the dataset row lock, and
    every row of `result` passed validation, the id check included.
    """
    dataset, user, purpose = upload.dataset, upload.user, upload.purpose
    now = timezone.now()
    batch = upload.batch(
        status=ImportBatch.Status.IMPORTED,
        rows_total=result.rows_total,
        rows_imported=len(result.rows),
        rows_rejected=0,
        report={"errors": [], "labelled_rows": sum(1 for r in result.rows if r.label)},
    )
    holdout = purpose == ImportBatch.Purpose.HOLDOUT
    items = [
        Item(
            dataset=dataset,
            batch=batch,
            external_id=row.external_id,
            values=row.values,
            source_file=batch.file_name,
            source_row=row.line,
            observed_at=row.observed_at,
            content_hash=item_content_hash(
                external_id=row.external_id, values=row.values, observed_at=row.observed_at, label=row.label
            ),
            queue_state=(
                Item.QueueState.HOLDOUT if holdout else Item.QueueState.DONE if row.label else Item.QueueState.OPEN
            ),
        )
        for row in result.rows
    ]
    Item.objects.bulk_create(items, batch_size=_BULK_SIZE)
    # bulk_create sets pks on PostgreSQL and SQLite alike.
    golds = [
        GoldLabel(item=item, dataset=dataset, label=labels[row.label], origin=GoldLabel.Origin.IMPORT, updated_at=now)
        for item, row in zip(items, result.rows, strict=True)
        if row.label
    ]
    GoldLabel.objects.bulk_create(golds, batch_size=_BULK_SIZE)
    audit_record(
        actor=user,
        action="import.completed",
        obj=batch,
        object_type="import_batch",
        dataset_id=dataset.pk,
        after={
            "file_name": batch.file_name,
            "file_sha256": batch.file_sha256,
            "purpose": purpose,
            "rows_imported": batch.rows_imported,
            "labelled_rows": len(golds),
        },
    )
    send_after_commit(items_imported, sender=Dataset, dataset_id=dataset.pk, batch_id=batch.pk)
    return batch


# --- Reviewing ---------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAnswer:
    """What the reviewer submitted. `label` is None for a skip."""

    label: LabelClass | None
    shown_prediction_id: int | None
    reason: str = ""


def _check_lease(item: Item, reviewer: AbstractBaseUser, now: datetime) -> None:
    if item.queue_state != Item.QueueState.OPEN:
        raise ValidationError("This item has already been reviewed or is not in the review queue.")
    if item.leased_to_id is None:
        # Reviews come from the queue, so the stored selection reason is true;
        # this also stops a second skip of the same item.
        raise ValidationError("This item was not handed to you by the queue; ask for the next item first.")
    if item.leased_to_id != reviewer.pk:
        if item.lease_expires_at and item.lease_expires_at > now:
            raise ValidationError("This item is being reviewed by someone else right now.")
        raise ValidationError("Your hold on this item expired and it went to someone else; ask for the next item.")


def review_submit(*, item_id: int, reviewer: AbstractBaseUser, answer: ReviewAnswer) -> Review:
    """Record one review (or skip) of an item, derive its gold label, release the lease.

    Precondition: the caller has checked the reviewer's role and membership.
    Raises ValidationError, changing nothing, when the item is no longer open,
    is leased to someone else, the label is not in the schema, or the model's
    prediction changed since the reviewer saw it.

    Locks only the item row (then the audit chain head, last). Side effect,
    after commit: `gold_labels_changed` is sent, and models_app's receiver
    checks the retraining policy in its own transaction; a failure there is
    logged and never undoes this review (the beat sweep queues any run it missed).
    """
    now = timezone.now()
    with transaction.atomic():
        # Lock only the item row (PostgreSQL would otherwise lock the joined rows too).
        item = (
            Item.objects.select_for_update(of=("self",), no_key=True)
            .select_related("dataset", "predicted_label")
            .get(pk=item_id)
        )
        _check_lease(item, reviewer, now)
        if answer.label is not None and answer.label.dataset_id != item.dataset_id:
            raise ValidationError({"label": "That label does not belong to this dataset."})
        if answer.shown_prediction_id != item.prediction_id:
            raise ValidationError(
                "The model's prediction for this item changed while you were looking at it. Please review it again."
            )
        selection = selection_for(item)
        if answer.label is None:
            decision = Review.Decision.SKIP
        elif item.predicted_label_id is None:
            decision = Review.Decision.LABEL
        elif answer.label.pk == item.predicted_label_id:
            decision = Review.Decision.ACCEPT
        else:
            decision = Review.Decision.CORRECT
        review = Review.objects.create(
            item=item,
            reviewer=reviewer,
            decision=decision,
            label=answer.label,
            shown_prediction_id=item.prediction_id,
            shown_label_id=item.predicted_label_id,
            shown_confidence=item.predicted_confidence,
            reason=answer.reason.strip()[:2000],
            mode=Review.Mode.OPEN,
            selection_strategy=selection.strategy,
            selection_score=selection.score,
            guideline_version=item.dataset.guideline_version,
        )
        item.leased_to = None
        item.lease_expires_at = None
        if decision == Review.Decision.SKIP:
            item.save(update_fields=["leased_to", "lease_expires_at"])
            audit_record(
                actor=reviewer,
                action="review.skipped",
                obj=item,
                dataset_id=item.dataset_id,
                after={"review_id": review.pk},
                reason=review.reason,
            )
            return review

        previous = GoldLabel.objects.filter(item=item).select_related("label").first()
        before = {"gold_label": previous.label.name if previous else None}
        if previous is None:
            GoldLabel.objects.create(
                item=item,
                dataset_id=item.dataset_id,
                label=answer.label,
                origin=GoldLabel.Origin.REVIEW,
                review=review,
                updated_at=now,
            )
        else:  # the item row is locked, so nobody else is changing its gold label
            previous.label = answer.label
            previous.origin = GoldLabel.Origin.REVIEW
            previous.review = review
            previous.updated_at = now
            previous.save(update_fields=["label", "origin", "review", "updated_at"])
        item.queue_state = Item.QueueState.DONE
        item.save(update_fields=["leased_to", "lease_expires_at", "queue_state"])
        audit_record(
            actor=reviewer,
            action="review.submitted",
            obj=item,
            dataset_id=item.dataset_id,
            before=before,
            after={
                "review_id": review.pk,
                "decision": decision,
                "label": answer.label.name,
                "shown_label": item.predicted_label.name if item.predicted_label_id else None,
                "shown_confidence": item.predicted_confidence,
                "shown_prediction_id": item.prediction_id,
                "selection": {"strategy": selection.strategy, "score": selection.score},
                "guideline_version": review.guideline_version,
            },
            reason=review.reason,
        )
        send_after_commit(gold_labels_changed, sender=Dataset, dataset_id=item.dataset_id)
    return review
