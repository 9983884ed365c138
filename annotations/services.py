"""Writes for annotations: reviewing items (importing is in annotations/imports.py).

Each service is one transaction and writes its audit event inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

# Importing lives in annotations/imports.py (stored upload, worker, staging, publish);
# these names stay importable from here for existing callers.
from annotations.consensus import AnswerRow, consensus
from annotations.counters import GOLD, STATE, counts_add
from annotations.imports import ImportRejected, import_batch_create, item_content_hash
from annotations.item_rows import item_lock_with_dataset
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.prediction_tie import prediction_tie
from annotations.queue import selection_for
from annotations.reason_codes import reason_code_for_answer
from annotations.signals import gold_labels_changed, send_after_commit
from governance.audit import audit_record
from workflow_site import sql_writes
from workflow_site.prepared_sql import prepared_cursor

__all__ = [
    "ImportRejected",
    "ReviewAnswer",
    "import_batch_create",
    "item_content_hash",
    "review_revise",
    "review_submit",
]


# --- Reviewing ---------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAnswer:
    """What the reviewer submitted. `label` is None for a skip or an "uncertain"."""

    label: LabelClass | None
    shown_prediction_id: int | None
    reason: str = ""
    reason_code: str = ""  # one of the dataset's reason codes (annotations/reason_codes.py)
    flagged: bool = False  # "follow this item up"
    uncertain: bool = False  # "I cannot tell": sent to adjudication

    @property
    def skip(self) -> bool:
        return self.label is None and not self.uncertain


def _check_lease(item: Item, reviewer: AbstractBaseUser, now: datetime, state: str = Item.QueueState.OPEN) -> None:
    if item.queue_state != state:
        if state == Item.QueueState.ADJUDICATE:
            raise ValidationError("This item is not awaiting adjudication (it was decided or reopened).")
        raise ValidationError("This item has already been reviewed or is not in the review queue.")
    if item.leased_to_id is None:
        # Reviews come from the queue, so the stored selection reason is true;
        # this also stops a second skip of the same item.
        raise ValidationError("This item was not handed to you by the queue; ask for the next item first.")
    if item.leased_to_id != reviewer.pk:
        if item.lease_expires_at and item.lease_expires_at > now:
            raise ValidationError("This item is being reviewed by someone else right now.")
        raise ValidationError("Your hold on this item expired and it went to someone else; ask for the next item.")


def _decision_for(answer: ReviewAnswer, shown_label_id: int | None) -> str:
    """The review's decision, relative to the prediction the reviewer saw (None: none shown)."""
    if answer.uncertain:
        return Review.Decision.UNCERTAIN
    if answer.label is None:
        return Review.Decision.SKIP
    if shown_label_id is None:
        return Review.Decision.LABEL
    return Review.Decision.ACCEPT if answer.label.pk == shown_label_id else Review.Decision.CORRECT


def _time_on_item_ms(item: Item, now: datetime) -> int | None:
    """From the card being served (the lease's start) to now, as the server saw it."""
    if item.lease_started_at is None:
        return None
    return max(0, int((now - item.lease_started_at).total_seconds() * 1000))


def _gold_label_set(*, item: Item, label_id: int, review: Review, origin: str, now: datetime) -> tuple[int, str] | None:
    """Make `label_id` the item's gold label, from `review`; returns the previous gold label's (id, name), or None.

    Precondition: inside the transaction that holds the item's row lock, so nobody
    else changes its gold label meanwhile. On PostgreSQL one statement reads the
    previous label and upserts the new one (the CTE reads the table as it was
    before the INSERT, in the same snapshot); elsewhere a read, then an insert or
    an update.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        gold, label_table = quote(GoldLabel._meta.db_table), quote(LabelClass._meta.db_table)
        with prepared_cursor() as cursor:
            cursor.execute(
                f"WITH previous AS (SELECT g.label_id, l.name FROM {gold} g"
                f" JOIN {label_table} l ON l.id = g.label_id WHERE g.item_id = %s)"
                f" INSERT INTO {gold} (item_id, dataset_id, label_id, origin, review_id, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (item_id) DO UPDATE SET label_id = EXCLUDED.label_id, origin = EXCLUDED.origin,"
                " review_id = EXCLUDED.review_id, updated_at = EXCLUDED.updated_at"
                " RETURNING (SELECT label_id FROM previous), (SELECT name FROM previous)",
                [item.pk, item.pk, item.dataset_id, label_id, origin, review.pk, now],
            )
            previous_id, previous_name = cursor.fetchone()
        return None if previous_id is None else (previous_id, previous_name)
    previous = GoldLabel.objects.filter(item=item).select_related("label").first()
    if previous is None:
        GoldLabel.objects.create(
            item=item, dataset_id=item.dataset_id, label_id=label_id, origin=origin, review=review, updated_at=now
        )
        return None
    before = (previous.label_id, previous.label.name)
    previous.label_id = label_id
    previous.origin = origin
    previous.review = review
    previous.updated_at = now
    previous.save(update_fields=["label", "origin", "review", "updated_at"])
    return before


@dataclass(frozen=True)
class _Settled:
    state: str
    answers_count: int
    gold_label: str | None  # the gold label derived now, by name
    previous_gold_label: str | None  # the gold label it replaced, by name


def _item_settle(*, item: Item, review: Review, label_names: dict[int, str], now: datetime) -> _Settled:
    """Move the item to where its answers now put it (open, adjudication, done) and keep the counters exact.

    Precondition: the item row is locked and `review` is already written. With an
    overlap of 1 and a plain answer there is nothing to read: the answer decides
    (or an "uncertain" goes to adjudication). With a larger overlap the item's
    reviews are read (a handful of rows, index item_reviewer): only those of its
    current round when it was reopened for re-review (`review_round_started_at`),
    so answers from before the reopening never count again. A gold label is
    only ever replaced, never removed: when an undo reopens an item, the label it
    had stands until the item is decided again (training snapshots may hold it).
    """
    overlap = item.dataset.overlap
    if overlap == 1 and review.supersedes_id is None:
        rows = [AnswerRow(review.reviewer_id, review.decision, review.label_id)]
    else:
        reviews = Review.objects.filter(item=item)
        if item.review_round_started_at is not None:  # reopened for re-review: earlier rounds no longer count
            reviews = reviews.filter(created_at__gte=item.review_round_started_at)
        rows = [
            AnswerRow(*row)
            for row in reviews.order_by("created_at", "pk").values_list("reviewer_id", "decision", "label_id")
        ]
    outcome = consensus(rows, overlap=overlap)
    deltas: dict[str, int] = {}
    if outcome.state != item.queue_state:
        deltas[f"{STATE}{item.queue_state}"] = -1
        deltas[f"{STATE}{outcome.state}"] = 1
    previous = None
    if outcome.state == Item.QueueState.DONE and outcome.label_id is not None:
        origin = GoldLabel.Origin.REVIEW if overlap == 1 else GoldLabel.Origin.CONSENSUS
        previous = _gold_label_set(item=item, label_id=outcome.label_id, review=review, origin=origin, now=now)
        deltas[f"{GOLD}{outcome.label_id}"] = deltas.get(f"{GOLD}{outcome.label_id}", 0) + 1
        if previous is not None:
            deltas[f"{GOLD}{previous[0]}"] = deltas.get(f"{GOLD}{previous[0]}", 0) - 1
    item.queue_state = outcome.state
    item.answers_count = outcome.answers_count
    counts_add(dataset_id=item.dataset_id, deltas=deltas)
    return _Settled(
        state=outcome.state,
        answers_count=outcome.answers_count,
        gold_label=label_names.get(outcome.label_id) if outcome.label_id is not None else None,
        previous_gold_label=previous[1] if previous else None,
    )


def _lease_release(item: Item) -> list[str]:
    item.leased_to = None
    item.lease_expires_at = None
    item.lease_started_at = None
    item.lease_audit_slice = False
    item.lease_blind = False
    return ["leased_to", "lease_expires_at", "lease_started_at", "lease_audit_slice", "lease_blind"]


def review_submit(*, item_id: int, reviewer: AbstractBaseUser, answer: ReviewAnswer) -> Review:
    """Record one answer (a label, "uncertain", or a skip) to an item the reviewer holds, and settle the item.

    Precondition: the caller has checked the reviewer's role and membership.
    Raises ValidationError, changing nothing, when the item is no longer open,
    is leased to someone else, the label is not in the schema, or the model's
    prediction changed since the reviewer saw it.

    With the dataset's overlap reached, agreeing answers derive the gold label
    and disagreeing ones (or an "uncertain") send the item to adjudication;
    before that the item goes back to the queue for another reviewer. On a blind
    lease the prediction was hidden: the review is in blind mode and records no
    shown label; the card then reveals the prediction, and `review_revise` keeps
    a revision as a new review. On a tie (annotations/prediction_tie.py) the card
    names no label as the model's either: the answer is a plain label, with no
    shown label recorded (the confidence shown is).

    Locks only the item row (then the audit chain head, last). Side effect,
    after commit: `gold_labels_changed` is sent, and models_app's receiver
    checks the retraining policy in its own transaction; a failure there is
    logged and never undoes this review (the beat sweep queues any run it missed).
    """
    now = timezone.now()
    with transaction.atomic():
        # Lock only the item row (PostgreSQL would otherwise lock the joined rows too).
        item = item_lock_with_dataset(item_id)
        _check_lease(item, reviewer, now)
        if answer.label is not None and answer.label.dataset_id != item.dataset_id:
            raise ValidationError({"label": "That label does not belong to this dataset."})
        if answer.shown_prediction_id != item.prediction_id:
            raise ValidationError(
                "The model's prediction for this item changed while you were looking at it. Please review it again."
            )
        selection = selection_for(item)
        blind = item.lease_blind
        # A tie (the card says the model is undecided) shows no label as the model's: the answer is a label.
        tied = prediction_tie(item.predicted_probabilities) is not None
        shown_label_id = None if blind or tied else item.predicted_label_id
        decision = _decision_for(answer, shown_label_id)
        reason_code = reason_code_for_answer(
            codes=item.dataset.reason_codes, code=answer.reason_code, correcting=decision == Review.Decision.CORRECT
        )
        # sql_writes: the same rows as Review.objects.create and item.save(update_fields=...), as fixed
        # prepared statements (every answer writes them; the ORM's statement building cost more).
        review = sql_writes.insert(
            Review(
                item=item,
                reviewer=reviewer,
                decision=decision,
                label=answer.label,
                shown_prediction_id=item.prediction_id,
                shown_label_id=shown_label_id,
                shown_confidence=None if blind else item.predicted_confidence,
                reason=answer.reason.strip()[:2000],
                reason_code=reason_code,
                flagged=answer.flagged,
                mode=Review.Mode.BLIND if blind else Review.Mode.OPEN,
                selection_strategy=selection.strategy,
                selection_score=selection.score,
                guideline_version=item.dataset.guideline_version,
                time_on_item_ms=_time_on_item_ms(item, now),
            )
        )
        fields = _lease_release(item)
        if decision == Review.Decision.SKIP:
            sql_writes.update(item, fields)
            audit_record(
                actor=reviewer,
                action="review.skipped",
                obj=item,
                dataset_id=item.dataset_id,
                after={"review_id": review.pk, "reason_code": reason_code, "flagged": review.flagged},
                reason=review.reason,
            )
            return review

        label_names = {answer.label.pk: answer.label.name} if answer.label is not None else {}
        if item.dataset.overlap > 1:
            label_names = dict(LabelClass.objects.filter(dataset_id=item.dataset_id).values_list("pk", "name"))
        settled = _item_settle(item=item, review=review, label_names=label_names, now=now)
        sql_writes.update(item, [*fields, "queue_state", "answers_count"])
        audit_record(
            actor=reviewer,
            action="review.submitted",
            obj=item,
            dataset_id=item.dataset_id,
            before={"gold_label": settled.previous_gold_label},
            after={
                "review_id": review.pk,
                "decision": decision,
                "label": answer.label.name if answer.label is not None else None,
                "mode": review.mode,
                "shown_label": item.predicted_label.name if shown_label_id else None,
                "shown_confidence": review.shown_confidence,
                "shown_prediction_id": item.prediction_id,
                "selection": {"strategy": selection.strategy, "score": selection.score},
                "guideline_version": review.guideline_version,
                "reason_code": reason_code,
                "flagged": review.flagged,
                "time_on_item_ms": review.time_on_item_ms,
                "item_state": settled.state,
                "answers": settled.answers_count,
                "gold_label": settled.gold_label,
            },
            reason=review.reason,
        )
        if settled.gold_label is not None:
            send_after_commit(gold_labels_changed, sender=Dataset, dataset_id=item.dataset_id)
    return review


def review_revise(*, review_id: int, reviewer: AbstractBaseUser, answer: ReviewAnswer | None) -> Review:
    """Replace the reviewer's last answer with `answer`, or withdraw it (undo) when `answer` is None.

    Both are a new review that supersedes the old one (reviews are never edited).
    Allowed for LOUPE_REVISE_SECONDS after the answer, while it is still the
    reviewer's newest review of the item and no adjudicator has decided the item.
    A revision after a blind answer is made with the prediction in view (mode
    "revealed"). An undo gives the item back to the reviewer, held for them, so
    they can answer again. Raises ValidationError, changing nothing, otherwise.
    """
    now = timezone.now()
    with transaction.atomic():
        try:
            original = Review.objects.select_related("label").get(pk=review_id, reviewer=reviewer)
        except Review.DoesNotExist as exc:
            raise ValidationError("You have no such answer to change.") from exc
        item = (
            Item.objects.select_for_update(of=("self",), no_key=True)
            .select_related("dataset", "predicted_label")
            .get(pk=original.item_id)
        )
        if original.decision not in (*Review.LABELLED_DECISIONS, Review.Decision.UNCERTAIN) or (
            original.decision == Review.Decision.ADJUDICATE
        ):
            raise ValidationError("Only a label or an 'uncertain' answer can be changed.")
        if now - original.created_at > timedelta(seconds=settings.LOUPE_REVISE_SECONDS):
            minutes = settings.LOUPE_REVISE_SECONDS // 60
            raise ValidationError(
                f"Answers can be changed for {minutes} minutes after they are given; this one is older."
            )
        newest = Review.objects.filter(item=item, reviewer=reviewer).order_by("-created_at", "-pk").first()
        if newest is None or newest.pk != original.pk:
            raise ValidationError("This is no longer your newest answer for this item.")
        adjudicated = Review.objects.filter(item=item, decision=Review.Decision.ADJUDICATE)
        if item.review_round_started_at is not None:  # a decision from before a re-review round does not bind it
            adjudicated = adjudicated.filter(created_at__gte=item.review_round_started_at)
        if adjudicated.exists():
            raise ValidationError("An adjudicator has decided this item since; ask them to reopen it.")
        if answer is not None and answer.label is not None and answer.label.dataset_id != item.dataset_id:
            raise ValidationError({"label": "That label does not belong to this dataset."})
        if answer is not None and answer.skip:
            raise ValidationError("Pick a label or 'uncertain' to change your answer, or undo it.")
        if original.shown_prediction_id != item.prediction_id:
            raise ValidationError(
                "The model's prediction for this item changed since you answered; it cannot be revised."
            )
        shown_label_id = item.predicted_label_id
        if answer is None:
            decision, label, mode = Review.Decision.WITHDRAWN, None, original.mode
        else:
            decision, label = _decision_for(answer, shown_label_id), answer.label
            # Revised with the prediction in view, unless the stop switch hides it: then the change stays blind.
            revealed = original.mode == Review.Mode.BLIND and not item.dataset.model_output_off
            mode = Review.Mode.REVEALED if revealed else original.mode
        reason_code = ""
        if answer is not None:
            reason_code = reason_code_for_answer(
                codes=item.dataset.reason_codes, code=answer.reason_code, correcting=decision == Review.Decision.CORRECT
            )
        review = Review.objects.create(
            item=item,
            reviewer=reviewer,
            decision=decision,
            label=label,
            shown_prediction_id=original.shown_prediction_id,
            shown_label_id=shown_label_id if mode != Review.Mode.BLIND else None,
            shown_confidence=item.predicted_confidence if mode != Review.Mode.BLIND else None,
            reason=(answer.reason.strip()[:2000] if answer is not None else ""),
            reason_code=reason_code,
            flagged=answer.flagged if answer is not None else False,
            mode=mode,
            selection_strategy=original.selection_strategy,
            selection_score=original.selection_score,
            guideline_version=item.dataset.guideline_version,
            supersedes=original,
            time_on_item_ms=None,
        )
        label_names = dict(LabelClass.objects.filter(dataset_id=item.dataset_id).values_list("pk", "name"))
        state_before = item.queue_state
        settled = _item_settle(item=item, review=review, label_names=label_names, now=now)
        fields = ["queue_state", "answers_count"]
        if answer is None:  # undo: the item is theirs again, to answer afresh
            # The card served after the answer goes back to the queue: a reviewer holds one item at a time.
            Item.objects.filter(dataset_id=item.dataset_id, leased_to=reviewer).exclude(pk=item.pk).update(
                leased_to=None, lease_expires_at=None, lease_started_at=None, lease_audit_slice=False, lease_blind=False
            )
            item.leased_to = reviewer
            item.lease_expires_at = now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)
            item.lease_started_at = now
            item.lease_audit_slice = original.selection_strategy == "audit_slice"
            item.lease_blind = False  # they have seen the prediction by now
            fields += ["leased_to", "lease_expires_at", "lease_started_at", "lease_audit_slice", "lease_blind"]
        item.save(update_fields=fields)
        audit_record(
            actor=reviewer,
            action="review.withdrawn" if answer is None else "review.revised",
            obj=item,
            dataset_id=item.dataset_id,
            before={
                "review_id": original.pk,
                "decision": original.decision,
                "label": original.label.name if original.label_id else None,
                "flagged": original.flagged,
                "item_state": state_before,
                "gold_label": settled.previous_gold_label,
            },
            after={
                "review_id": review.pk,
                "decision": decision,
                "label": label.name if label is not None else None,
                "mode": mode,
                "shown_label": item.predicted_label.name if shown_label_id and mode != Review.Mode.BLIND else None,
                "reason_code": reason_code,
                "flagged": review.flagged,
                "item_state": settled.state,
                "answers": settled.answers_count,
                "gold_label": settled.gold_label,
            },
            reason=review.reason,
        )
        if settled.gold_label is not None:
            send_after_commit(gold_labels_changed, sender=Dataset, dataset_id=item.dataset_id)
    return review
