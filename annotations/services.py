"""Writes for annotations: reviewing items (importing is in annotations/imports.py).

Each service is one transaction and writes its audit event inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

# Importing lives in annotations/imports.py (stored upload, worker, staging, publish);
# these names stay importable from here for existing callers.
from annotations.counters import GOLD, STATE, counts_add
from annotations.imports import ImportRejected, import_batch_create, item_content_hash
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import selection_for
from annotations.reason_codes import reason_code_for_answer
from annotations.signals import gold_labels_changed, send_after_commit
from governance.audit import audit_record

__all__ = ["ImportRejected", "ReviewAnswer", "import_batch_create", "item_content_hash", "review_submit"]


# --- Reviewing ---------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAnswer:
    """What the reviewer submitted. `label` is None for a skip."""

    label: LabelClass | None
    shown_prediction_id: int | None
    reason: str = ""
    reason_code: str = ""  # one of the dataset's reason codes (annotations/reason_codes.py)
    flagged: bool = False  # "follow this item up"


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


def _review_count_deltas(*, previous_label_id: int | None, label_id: int) -> dict[str, int]:
    """An open item answered: open → done, and its gold label (if it had one) replaced.

    An open item never counts as labelled at import (that counter is of done
    items), so answering one leaves that counter alone.
    """
    deltas = {f"{STATE}{Item.QueueState.OPEN}": -1, f"{STATE}{Item.QueueState.DONE}": 1, f"{GOLD}{label_id}": 1}
    if previous_label_id is not None:
        deltas[f"{GOLD}{previous_label_id}"] = deltas.get(f"{GOLD}{previous_label_id}", 0) - 1
    return deltas


def _gold_label_set(*, item: Item, label: LabelClass, review: Review, now: datetime) -> tuple[int, str] | None:
    """Make `label` the item's gold label, from `review`; returns the previous gold label's (id, name), or None.

    Precondition: inside the transaction that holds the item's row lock, so nobody
    else changes its gold label meanwhile. On PostgreSQL one statement reads the
    previous label and upserts the new one (the CTE reads the table as it was
    before the INSERT, in the same snapshot); elsewhere a read, then an insert or
    an update.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        gold, label_table = quote(GoldLabel._meta.db_table), quote(LabelClass._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH previous AS (SELECT g.label_id, l.name FROM {gold} g"
                f" JOIN {label_table} l ON l.id = g.label_id WHERE g.item_id = %s)"
                f" INSERT INTO {gold} (item_id, dataset_id, label_id, origin, review_id, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (item_id) DO UPDATE SET label_id = EXCLUDED.label_id, origin = EXCLUDED.origin,"
                " review_id = EXCLUDED.review_id, updated_at = EXCLUDED.updated_at"
                " RETURNING (SELECT label_id FROM previous), (SELECT name FROM previous)",
                [item.pk, item.pk, item.dataset_id, label.pk, GoldLabel.Origin.REVIEW, review.pk, now],
            )
            previous_id, previous_name = cursor.fetchone()
        return None if previous_id is None else (previous_id, previous_name)
    previous = GoldLabel.objects.filter(item=item).select_related("label").first()
    if previous is None:
        GoldLabel.objects.create(
            item=item,
            dataset_id=item.dataset_id,
            label=label,
            origin=GoldLabel.Origin.REVIEW,
            review=review,
            updated_at=now,
        )
        return None
    before = (previous.label_id, previous.label.name)
    previous.label = label
    previous.origin = GoldLabel.Origin.REVIEW
    previous.review = review
    previous.updated_at = now
    previous.save(update_fields=["label", "origin", "review", "updated_at"])
    return before


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
        reason_code = reason_code_for_answer(
            codes=item.dataset.reason_codes, code=answer.reason_code, correcting=decision == Review.Decision.CORRECT
        )
        review = Review.objects.create(
            item=item,
            reviewer=reviewer,
            decision=decision,
            label=answer.label,
            shown_prediction_id=item.prediction_id,
            shown_label_id=item.predicted_label_id,
            shown_confidence=item.predicted_confidence,
            reason=answer.reason.strip()[:2000],
            reason_code=reason_code,
            flagged=answer.flagged,
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
                after={"review_id": review.pk, "reason_code": reason_code, "flagged": review.flagged},
                reason=review.reason,
            )
            return review

        # The item row is locked, so nobody else is changing its gold label.
        previous = _gold_label_set(item=item, label=answer.label, review=review, now=now)
        before = {"gold_label": previous[1] if previous else None}
        previous_label_id = previous[0] if previous else None
        item.queue_state = Item.QueueState.DONE
        item.save(update_fields=["leased_to", "lease_expires_at", "queue_state"])
        counts_add(
            dataset_id=item.dataset_id,
            deltas=_review_count_deltas(previous_label_id=previous_label_id, label_id=answer.label.pk),
        )
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
                "reason_code": reason_code,
                "flagged": review.flagged,
            },
            reason=review.reason,
        )
        send_after_commit(gold_labels_changed, sender=Dataset, dataset_id=item.dataset_id)
    return review
