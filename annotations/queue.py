"""The review queue: which item a reviewer gets next, and the lease that keeps it theirs.

Least confidence first: open items ordered by the champion's top-class
probability (items with no prediction yet come last, in arrival order). A
reviewer keeps the item they hold until the lease expires; two reviewers are
never handed the same item, because the claim is a conditional UPDATE that only
one of them can win (plus SKIP LOCKED on PostgreSQL, so they do not even wait
on each other's candidate rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotations.models import Dataset, Item, Review

STRATEGY_LEAST_CONFIDENCE = "least_confidence"
STRATEGY_UNSCORED = "unscored"  # no prediction yet: arrival order
_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class QueuedItem:
    item: Item
    strategy: str
    score: float | None  # uncertainty = 1 - top-class probability

    @property
    def reason_text(self) -> str:
        """Why the queue picked this item, in words for the card."""
        if self.strategy == STRATEGY_LEAST_CONFIDENCE and self.score is not None:
            return f"Picked because the model is unsure (its top answer has {1.0 - self.score:.0%} confidence)"
        return "Picked in arrival order: no prediction yet"


def selection_for(item: Item) -> QueuedItem:
    """Why the queue offers this item: its strategy and score (stored on the review)."""
    if item.predicted_confidence is None:
        return QueuedItem(item, STRATEGY_UNSCORED, None)
    return QueuedItem(item, STRATEGY_LEAST_CONFIDENCE, round(1.0 - item.predicted_confidence, 6))


def _held_item(dataset: Dataset, reviewer: AbstractBaseUser, now: timezone.datetime) -> Item | None:
    return (
        Item.objects.select_related("predicted_label", "batch")
        .filter(dataset=dataset, leased_to=reviewer, lease_expires_at__gt=now, queue_state=Item.QueueState.OPEN)
        .first()
    )


def queue_next_item(*, dataset: Dataset, reviewer: AbstractBaseUser) -> QueuedItem | None:
    """The item this reviewer should review now, leased to them; None when the queue is empty."""
    now = timezone.now()
    held = _held_item(dataset, reviewer, now)
    if held is not None:
        return selection_for(held)
    lease_until = now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)
    already_answered = Review.objects.filter(item=OuterRef("pk"), reviewer=reviewer)
    candidates = (
        Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN)
        .filter(Q(leased_to__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_to=reviewer))
        .exclude(Exists(already_answered))
        .order_by(F("queue_priority").asc(nulls_last=True), "id")
    )
    for _ in range(_CLAIM_ATTEMPTS):
        with transaction.atomic():
            if connection.features.has_select_for_update_skip_locked:
                candidate_ids = list(
                    candidates.select_for_update(skip_locked=True, no_key=True).values_list("pk", flat=True)[:1]
                )
            else:
                candidate_ids = list(candidates.values_list("pk", flat=True)[:1])
            if not candidate_ids:
                return None
            # The claim: only succeeds if nobody leased the row since we read it.
            claimed = (
                Item.objects.filter(pk=candidate_ids[0], queue_state=Item.QueueState.OPEN)
                .filter(Q(leased_to__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_to=reviewer))
                .update(leased_to=reviewer, lease_expires_at=lease_until)
            )
        if claimed:
            item = Item.objects.select_related("predicted_label", "batch").get(pk=candidate_ids[0])
            return selection_for(item)
    return None
