"""The review queue: which item a reviewer gets next, and the lease that keeps it theirs.

Open items are ranked by the dataset's strategy (annotations/queue_scores.py):
each item stores `queue_priority = 1 − score`, so every strategy is one
ascending range scan of the `item_queue` index; items with no score yet come
last, in arrival order. A share of the items served (the dataset's audit
slice, 10% by default, always on unless a reason is recorded) is picked
uniformly at random instead: open items in the order of the random key each
got at import (`item_audit_slice`, a partial index), so the sample is unbiased
by the model. Which of the two served the item is stored on the lease and then
on the review, so later estimates can tell the random sample apart.

Overlap: an item needs the dataset's `overlap` answers from different
reviewers; it is leased to one reviewer at a time (so never to more reviewers
than its overlap), stays open between answers, and a reviewer is never served
an item they answered (a skip comes back to them after
LOUPE_SKIP_RETURN_SECONDS). Items whose answers disagree wait in the
adjudication queue, served the same way to adjudicators who did not answer them.

A reviewer keeps the item they hold until the lease expires; two reviewers are
never handed the same item, because the claim is a conditional UPDATE that only
one of them can win (plus SKIP LOCKED on PostgreSQL, so they do not even wait
on each other's candidate rows).

On PostgreSQL the claim is one statement, `UPDATE … WHERE id = (SELECT … LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED) AND <still free> RETURNING id`: the subquery
locks the row it picks (rechecking its conditions on the newest version), so the
conditional UPDATE around it cannot lose that row, and no reviewer waits on
another's candidate. Nothing returned means no free candidate. The same
statement first looks for an item the reviewer already holds (then it claims
nothing and returns that one) and returns the item with its label and batch
(annotations/item_rows.py): one round trip per card, none of them built by
the ORM, whose query building cost more CPU than the database's answer. Elsewhere
(SQLite) the claim is a SELECT then the conditional UPDATE in one transaction;
another reviewer can win the row in between, so a lost claim is retried with
the next candidate, up to `_CLAIM_ATTEMPTS` times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from annotations.item_rows import item_joins, item_select_columns, items_from_rows
from annotations.models import Dataset, Item, QueueStrategy, Review
from workflow_site.prepared_sql import prepared_cursor

STRATEGY_LEAST_CONFIDENCE = QueueStrategy.LEAST_CONFIDENCE.value
STRATEGY_UNSCORED = "unscored"  # no score yet: arrival order
STRATEGY_AUDIT_SLICE = "audit_slice"  # the uniform-random slice
STRATEGY_ADJUDICATION = "adjudication"  # the answers disagree (or one was "uncertain")
_CLAIM_ATTEMPTS = 5
SKIP_RETURN_SECONDS = settings.LOUPE_SKIP_RETURN_SECONDS

# Draws for the audit slice and blind review (not secrets: a reviewer gains nothing by predicting them).
# Tests replace it to make a draw certain.
queue_random = random.Random()

_REASONS = {
    QueueStrategy.LEAST_CONFIDENCE: "the model is unsure (its top answer has {certainty:.0%} confidence)",
    QueueStrategy.MARGIN: "the model's top two answers are close (margin {certainty:.0%})",
    QueueStrategy.ENTROPY: "the model spreads its probability over the classes (entropy {score:.0%} of the most)",
    QueueStrategy.DISAGREEMENT: "a candidate model disagrees with the champion here ({score:.0%})",
    QueueStrategy.LABEL_ISSUE: "its gold label may be wrong (label quality {certainty:.0%}): please re-review",
}


@dataclass(frozen=True)
class QueuedItem:
    item: Item
    strategy: str
    score: float | None  # uncertainty = 1 - top-class probability

    @property
    def blind(self) -> bool:
        """The card hides the model's prediction until the reviewer has answered."""
        return self.item.lease_blind

    @property
    def reason_text(self) -> str:
        """Why the queue picked this item, in words for the card."""
        if self.strategy == STRATEGY_AUDIT_SLICE:
            return "Picked at random for the audit slice (keeps the model's estimates honest)"
        if self.strategy == STRATEGY_ADJUDICATION:
            return "Reviewers disagree (or one was uncertain): your decision sets the gold label"
        template = _REASONS.get(self.strategy)
        if template is not None and self.blind:  # the score would give the prediction away
            strategy = QueueStrategy(self.strategy).label.lower()
            return f"Picked by the queue's strategy ({strategy}); details once you answer"
        if template is not None and self.score is not None:
            return "Picked because " + template.format(score=self.score, certainty=1.0 - self.score)
        if self.item.prediction_id is None:
            return "Picked in arrival order: no prediction yet"
        return "Picked in arrival order: no score for this item under the dataset's strategy yet"


def selection_for(item: Item) -> QueuedItem:
    """Why the queue offers this item: its strategy and score (stored on the review)."""
    if item.queue_state == Item.QueueState.ADJUDICATE:
        return QueuedItem(item, STRATEGY_ADJUDICATION, None)
    if item.lease_audit_slice:
        return QueuedItem(item, STRATEGY_AUDIT_SLICE, None)
    if item.queue_priority is None or not item.priority_strategy:
        return QueuedItem(item, STRATEGY_UNSCORED, None)
    return QueuedItem(item, item.priority_strategy, round(1.0 - item.queue_priority, 6))


def _held_item(dataset: Dataset, user: AbstractBaseUser, now: datetime, state: str) -> Item | None:
    # No ORDER BY (not .first(), which orders by id): a reviewer holds one item, and ordering by id
    # lets the planner walk the dataset's (dataset, id) index filtering on the holder, a scan that
    # grows with the dataset, instead of looking the holder up in item_lease.
    held = (
        Item.objects.select_related("predicted_label", "batch")
        .filter(dataset=dataset, leased_to=user, lease_expires_at__gt=now, queue_state=state, purged_at__isnull=True)
        .order_by()[:1]
    )
    return next(iter(held), None)


@dataclass(frozen=True)
class _Lease:
    """What a claim writes onto the item besides its holder."""

    until: datetime
    audit_slice: bool
    blind: bool


def _claim_postgresql(
    candidates: _Candidates,
    *,
    dataset: Dataset,
    state: str,
    reviewer: AbstractBaseUser,
    now: datetime,
    lease: _Lease,
) -> Item | None:
    """The item `reviewer` holds, or else the first free candidate leased to them, in one statement; None when
    they hold none and none is free. The item comes back with its label and batch (annotations/item_rows.py).

    The candidate subquery is `candidates` with the row lock appended (the
    statement runs in autocommit: it needs no transaction). When the reviewer holds an item
    (`held`, by the item_lease index) nothing is claimed and that item is
    returned. An item with no prediction is never blind (there is nothing to hide).
    """
    sub_sql, sub_params = f"{candidates.sql} LIMIT 1", candidates.params
    lock = connection.ops.for_update_sql(skip_locked=True, no_key=True)
    table = connection.ops.quote_name(Item._meta.db_table)
    with prepared_cursor() as cursor:
        cursor.execute(
            f"WITH held AS (SELECT id FROM {table} WHERE dataset_id = %s AND leased_to_id = %s"
            " AND lease_expires_at > %s AND queue_state = %s AND purged_at IS NULL LIMIT 1),"
            f" claimed AS (UPDATE {table} SET leased_to_id = %s, lease_expires_at = %s,"
            " lease_started_at = %s, lease_audit_slice = %s, lease_blind = (%s AND prediction_id IS NOT NULL)"
            f" WHERE NOT EXISTS (SELECT 1 FROM held) AND id = ({sub_sql} {lock}) AND queue_state = %s"
            " AND purged_at IS NULL AND (leased_to_id IS NULL OR lease_expires_at <= %s OR leased_to_id = %s)"
            f" RETURNING {table}.*),"
            f" chosen AS (SELECT * FROM claimed UNION ALL SELECT {table}.* FROM {table} JOIN held USING (id))"
            f" SELECT {item_select_columns('chosen')} FROM chosen{item_joins('chosen')}",
            [
                *(dataset.pk, reviewer.pk, now, state),
                *(reviewer.pk, lease.until, now, lease.audit_slice, lease.blind),
                *sub_params,
                *(state, now, reviewer.pk),
            ],
        )
        items = items_from_rows(cursor.fetchall())
    return items[0] if items else None


def _free(now: datetime, reviewer: AbstractBaseUser) -> Q:
    """Claimable by `reviewer`: not leased to someone else, and its data not removed by retention."""
    return (Q(leased_to__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_to=reviewer)) & Q(
        purged_at__isnull=True
    )


# Serving orders, each one index range scan: item_queue (dataset, queue_state, queue_priority, id), and the
# audit slice's partial item_audit_slice (dataset, random_key) WHERE queue_state = 'open'.
_BY_PRIORITY = "i.queue_priority ASC NULLS LAST, i.id"
_AT_RANDOM = "i.random_key, i.id"


@dataclass(frozen=True)
class _Candidates:
    """The free items of one queue in serving order, as SQL `SELECT i.id … ORDER BY …` (no LIMIT).

    Plain SQL, not a queryset: the claim runs on every card, and building this
    query through the ORM (a filter, an EXISTS, an ordering) cost more CPU than
    the database spent answering it.
    """

    sql: str
    params: list[Any]


def _candidates(
    *,
    dataset: Dataset,
    state: str,
    reviewer: AbstractBaseUser,
    now: datetime,
    order: str,
    skips_return_after: datetime | None,
) -> _Candidates:
    """Items of `dataset` in `state`, free for `reviewer` (see _free), none that `reviewer` answered, in `order`.

    With `skips_return_after`, an item `reviewer` skipped before that moment counts as not answered.
    """
    adapt = connection.ops.adapt_datetimefield_value
    item, review = connection.ops.quote_name(Item._meta.db_table), connection.ops.quote_name(Review._meta.db_table)
    answered, answered_params = "", []
    if skips_return_after is not None:
        # Only an answer in force keeps an item from its reviewer: not one a later review replaced (a
        # revision counts in its place) and not a withdrawal. An undone answer is no answer (the undo
        # leases the item back to them), so undo-then-skip comes back like any skip. The inner probe
        # runs only for the rare candidate this reviewer has a review of (review_item_reviewer).
        answered, answered_params = (
            " AND (r.decision <> %s OR r.created_at > %s) AND r.decision <> %s"
            f" AND NOT EXISTS (SELECT 1 FROM {review} w WHERE w.supersedes_id = r.id)",
            [
                Review.Decision.SKIP.value,
                adapt(skips_return_after),
                Review.Decision.WITHDRAWN.value,
            ],
        )
    return _Candidates(
        sql=f"SELECT i.id FROM {item} i WHERE i.dataset_id = %s AND i.queue_state = %s AND i.purged_at IS NULL"
        " AND (i.leased_to_id IS NULL OR i.lease_expires_at <= %s OR i.leased_to_id = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {review} r WHERE r.item_id = i.id AND r.reviewer_id = %s{answered})"
        f" ORDER BY {order}",
        params=[dataset.pk, state, adapt(now), reviewer.pk, reviewer.pk, *answered_params],
    )


def queue_next_item(*, dataset: Dataset, reviewer: AbstractBaseUser) -> QueuedItem | None:
    """The open item this reviewer should review now, leased to them; None when the queue is empty."""
    now = timezone.now()
    if connection.vendor != "postgresql":  # PostgreSQL looks for the held item in the claim's own statement
        held = _held_item(dataset, reviewer, now, Item.QueueState.OPEN)
        if held is not None:
            return selection_for(held)

    # Not an item this reviewer answered; one they skipped comes back to them once
    # LOUPE_SKIP_RETURN_SECONDS have passed (others may take it meanwhile): a skip means
    # "not now", and leaving it to others alone would drain hard items onto a few people.
    def open_items(order: str) -> _Candidates:
        return _candidates(
            dataset=dataset,
            state=Item.QueueState.OPEN,
            reviewer=reviewer,
            now=now,
            order=order,
            skips_return_after=now - timedelta(seconds=SKIP_RETURN_SECONDS),
        )

    # The stop switch (annotations/oversight.py): no model output shown, and no model order either.
    model_off = dataset.model_output_off_since is not None
    blind = queue_random.random() * 100 < dataset.blind_percent or model_off
    until = now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)
    if queue_random.random() * 100 < dataset.audit_slice_percent or model_off:
        claimed = _claim(
            open_items(_AT_RANDOM),
            dataset=dataset,
            state=Item.QueueState.OPEN,
            reviewer=reviewer,
            now=now,
            lease=_Lease(until=until, audit_slice=True, blind=blind),
        )
        if claimed is not None:
            return claimed
    return _claim(
        open_items(_BY_PRIORITY),
        dataset=dataset,
        state=Item.QueueState.OPEN,
        reviewer=reviewer,
        now=now,
        lease=_Lease(until=until, audit_slice=False, blind=blind),
    )


def adjudication_next_item(*, dataset: Dataset, adjudicator: AbstractBaseUser) -> QueuedItem | None:
    """The item awaiting adjudication this adjudicator should decide now, leased to them; None when none.

    Never one they answered themselves: a disagreement is settled by a fresh pair of eyes.
    """
    now = timezone.now()
    if connection.vendor != "postgresql":  # PostgreSQL looks for the held item in the claim's own statement
        held = _held_item(dataset, adjudicator, now, Item.QueueState.ADJUDICATE)
        if held is not None:
            return selection_for(held)
    candidates = _candidates(
        dataset=dataset,
        state=Item.QueueState.ADJUDICATE,
        reviewer=adjudicator,
        now=now,
        order=_BY_PRIORITY,
        skips_return_after=None,
    )
    until = now + timedelta(seconds=settings.LOUPE_LEASE_SECONDS)
    return _claim(
        candidates,
        dataset=dataset,
        state=Item.QueueState.ADJUDICATE,
        reviewer=adjudicator,
        now=now,
        lease=_Lease(until=until, audit_slice=False, blind=False),
    )


def _claim(
    candidates: _Candidates,
    *,
    dataset: Dataset,
    state: str,
    reviewer: AbstractBaseUser,
    now: datetime,
    lease: _Lease,
) -> QueuedItem | None:
    """Lease the first free candidate (in `candidates`' order) to `reviewer`; None when none is free.

    On PostgreSQL an item `reviewer` already holds is returned instead (see _claim_postgresql); elsewhere the
    caller has looked for it first.
    """
    if connection.vendor == "postgresql":
        item = _claim_postgresql(candidates, dataset=dataset, state=state, reviewer=reviewer, now=now, lease=lease)
        return selection_for(item) if item is not None else None
    for _ in range(_CLAIM_ATTEMPTS):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"{candidates.sql} LIMIT 1", candidates.params)
            candidate_ids = [pk for (pk,) in cursor.fetchall()]
            if not candidate_ids:
                return None
            # The claim: only succeeds if nobody leased the row since we read it.
            claimed = (
                Item.objects.filter(pk=candidate_ids[0], queue_state=state)
                .filter(_free(now, reviewer))
                .update(
                    leased_to=reviewer,
                    lease_expires_at=lease.until,
                    lease_started_at=now,
                    lease_audit_slice=lease.audit_slice,
                    lease_blind=Case(When(prediction_id__isnull=False, then=Value(lease.blind)), default=Value(False)),
                )
            )
        if claimed:
            return _claimed(candidate_ids[0])
    return None


def _claimed(item_id: int) -> QueuedItem:
    return selection_for(Item.objects.select_related("predicted_label", "batch").get(pk=item_id))
