"""Adjudication: an adjudicator settles an item whose reviewers disagreed (or one was uncertain).

The adjudication queue is annotations/queue.py::adjudication_next_item. The
adjudicator sees every answer side by side (who, what, reason code, comment,
time on item, blind or not) and decides with a reason; the decision is a review
of its own kind (decision "adjudicate") and becomes the gold label.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotations.consensus import current_answers
from annotations.counters import GOLD, STATE, counts_add
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import STRATEGY_ADJUDICATION
from annotations.services import _check_lease, _gold_label_set, _lease_release, _time_on_item_ms
from annotations.signals import gold_labels_changed, send_after_commit
from governance.audit import audit_record


@dataclass(frozen=True)
class AnswerShown:
    """One reviewer's current answer, as the adjudicator sees it."""

    review: Review
    superseded: list[Review]  # the same reviewer's earlier answers to this item, newest first


def item_answers(*, item: Item) -> list[AnswerShown]:
    """The answers that count for `item` (one per reviewer, oldest first), each with what it superseded.

    Precondition: the caller may read the item (selectors). One query; the same
    rules as consensus.current_answers (which takes Review rows as they are).
    """
    this_round = Review.objects.filter(item=item)
    if item.review_round_started_at is not None:  # reopened for re-review: only this round's answers count
        this_round = this_round.filter(created_at__gte=item.review_round_started_at)
    reviews = list(
        this_round.exclude(decision__in=(Review.Decision.SKIP, Review.Decision.ADJUDICATE))
        .select_related("reviewer", "label", "shown_label")
        .order_by("created_at", "pk")
    )
    counting = current_answers(reviews)
    return [
        AnswerShown(
            review=review,
            superseded=[
                r
                for r in reversed(reviews)
                if r.reviewer_id == review.reviewer_id and r.pk != review.pk and r.decision != Review.Decision.WITHDRAWN
            ],
        )
        for review in sorted(counting.values(), key=lambda r: (r.created_at, r.pk))
    ]


def adjudication_submit(*, item_id: int, adjudicator: AbstractBaseUser, label: LabelClass, reason: str) -> Review:
    """Decide an item awaiting adjudication: `label` becomes its gold label, `reason` says why.

    Precondition: the caller has checked the adjudicator's role and membership;
    the adjudicator holds the item (the adjudication queue leased it to them).
    Raises ValidationError, changing nothing, when the reason is empty, the
    label is not the dataset's, or the item is not theirs to decide.
    """
    reason = reason.strip()[:2000]
    if not reason:
        raise ValidationError({"reason": "Say why you decided this way: the reason is kept with the gold label."})
    now = timezone.now()
    with transaction.atomic():
        item = (
            Item.objects.select_for_update(of=("self",), no_key=True)
            .select_related("dataset", "predicted_label")
            .get(pk=item_id)
        )
        _check_lease(item, adjudicator, now, state=Item.QueueState.ADJUDICATE)
        if label.dataset_id != item.dataset_id:
            raise ValidationError({"label": "That label does not belong to this dataset."})
        answers = item_answers(item=item)
        if any(answer.review.reviewer_id == adjudicator.pk for answer in answers):
            raise ValidationError("You answered this item yourself; another adjudicator must decide it.")
        review = Review.objects.create(
            item=item,
            reviewer=adjudicator,
            decision=Review.Decision.ADJUDICATE,
            label=label,
            shown_prediction_id=item.prediction_id,
            shown_label_id=item.predicted_label_id,
            shown_confidence=item.predicted_confidence,
            reason=reason,
            mode=Review.Mode.OPEN,
            selection_strategy=STRATEGY_ADJUDICATION,
            selection_score=None,
            guideline_version=item.dataset.guideline_version,
            time_on_item_ms=_time_on_item_ms(item, now),
        )
        previous = _gold_label_set(
            item=item, label_id=label.pk, review=review, origin=GoldLabel.Origin.ADJUDICATION, now=now
        )
        deltas = {
            f"{STATE}{Item.QueueState.ADJUDICATE}": -1,
            f"{STATE}{Item.QueueState.DONE}": 1,
            f"{GOLD}{label.pk}": 1,
        }
        if previous is not None:
            deltas[f"{GOLD}{previous[0]}"] = deltas.get(f"{GOLD}{previous[0]}", 0) - 1
        counts_add(dataset_id=item.dataset_id, deltas=deltas)
        fields = _lease_release(item)
        item.queue_state = Item.QueueState.DONE
        item.save(update_fields=[*fields, "queue_state"])
        audit_record(
            actor=adjudicator,
            action="review.adjudicated",
            obj=item,
            dataset_id=item.dataset_id,
            before={"gold_label": previous[1] if previous else None},
            after={
                "review_id": review.pk,
                "label": label.name,
                "answers": [
                    {
                        "review_id": a.review.pk,
                        "reviewer": a.review.reviewer.get_username(),
                        "decision": a.review.decision,
                        "label": a.review.label.name if a.review.label_id else None,
                    }
                    for a in answers
                ],
                "time_on_item_ms": review.time_on_item_ms,
            },
            reason=reason,
        )
        send_after_commit(gold_labels_changed, sender=Dataset, dataset_id=item.dataset_id)
    return review
