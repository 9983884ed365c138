"""The review queue: which item a reviewer gets next, and the lease that keeps it theirs.

Least confidence first: open items ordered by the champion's top-class
probability (items with no prediction yet come last, in arrival order). A
reviewer keeps the item they hold until the lease expires; two reviewers are
never handed the same item, because the claim is a conditional UPDATE that only
one of them can win (plus SKIP LOCKED on PostgreSQL, so they do not even wait
on each other's candidate rows).

On PostgreSQL the claim is one statement, `UPDATE … WHERE id = (SELECT … LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED) AND <still free> RETURNING id`: the subquery
locks the row it picks (rechecking its conditions on the newest version), so the
conditional UPDATE around it cannot lose that row, and no reviewer waits on
another's candidate. Nothing returned means no free candidate. Elsewhere
(SQLite) the claim is a SELECT then the conditional UPDATE in one transaction;
another reviewer can win the row in between, so a lost claim is retried with
the next candidate, up to `_CLAIM_ATTEMPTS` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotations.models import Dataset, Item, Review

STRATEGY_LEAST_CONFIDENCE = "least_confidence"
STRATEGY_UNSCORED = "unscored"  # no prediction yet: arrival order
_CLAIM_ATTEMPTS = 5
SKIP_RETURN_SECONDS = settings.LOUPE_SKIP_RETURN_SECONDS


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


def _claim_postgresql(
    candidates: QuerySet[Item], *, reviewer: AbstractBaseUser, now: datetime, lease_until: datetime
) -> int | None:
    """Lease the first free candidate to `reviewer` in one statement; its id, or None when none is free.

    The candidate subquery is Django's SQL for `candidates` with the row lock
    appended: Django only compiles `select_for_update()` inside a transaction,
    and this statement needs none (autocommit).
    """
    sub_sql, sub_params = candidates.values_list("pk", flat=True)[:1].query.sql_with_params()
    lock = connection.ops.for_update_sql(skip_locked=True, no_key=True)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Item._meta.db_table)} SET leased_to_id = %s, lease_expires_at = %s"
            f" WHERE id = ({sub_sql} {lock}) AND queue_state = %s"
            " AND (leased_to_id IS NULL OR lease_expires_at <= %s OR leased_to_id = %s) RETURNING id",
            [reviewer.pk, lease_until, *sub_params, Item.QueueState.OPEN, now, reviewer.pk],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def queue_next_item(*, dataset: Dataset, reviewer: AbstractBaseUser) -> QueuedItem | None:
    """The item this reviewer should review now, leased to them; None when the queue is empty."""
    now = timezone.now()
    held = _held_item(dataset, reviewer, now)
    if held is not None:
        return selection_for(held)
    lease_until = now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)
    # Not an item this reviewer answered; one they skipped comes back to them once
    # LOUPE_SKIP_RETURN_SECONDS have passed (others may take it meanwhile): a skip means
    # "not now", and leaving it to others alone would drain hard items onto a few people.
    skipped_lately = Q(decision=Review.Decision.SKIP, created_at__gt=now - timedelta(seconds=SKIP_RETURN_SECONDS))
    already_answered = Review.objects.filter(item=OuterRef("pk"), reviewer=reviewer).filter(
        ~Q(decision=Review.Decision.SKIP) | skipped_lately
    )
    candidates = (
        Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN)
        .filter(Q(leased_to__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_to=reviewer))
        .exclude(Exists(already_answered))
        .order_by(F("queue_priority").asc(nulls_last=True), "id")
    )
    if connection.vendor == "postgresql":
        claimed_id = _claim_postgresql(candidates, reviewer=reviewer, now=now, lease_until=lease_until)
        return _claimed(claimed_id) if claimed_id is not None else None
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
            return _claimed(candidate_ids[0])
    return None


def _claimed(item_id: int) -> QueuedItem:
    return selection_for(Item.objects.select_related("predicted_label", "batch").get(pk=item_id))
