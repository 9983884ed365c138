"""Sixteen reviewers at once with overlap 2, on PostgreSQL (issue 8): no item over-leased, no answer lost."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from annotations.counters import counts_recount, dataset_counts
from annotations.models import Dataset, Item, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.selectors import audit_chain_verify
from tests.helpers import make_user, synthetic_rows
from workflow_site.access import Role

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="sixteen writers at once: PostgreSQL's row locks, not SQLite's one writer"
)

REVIEWERS = 16
ANSWERS_EACH = 50
OVERLAP = 2


@dataclass(frozen=True)
class Hold:
    """A span in which `reviewer_id` certainly held `item_id`: from the queue handing it to them (their claim
    had committed) until their answer began (nothing but that answer can end a lease that has not expired)."""

    item_id: int
    reviewer_id: int
    start_ns: int
    end_ns: int


def concurrent_holds(holds: list[Hold]) -> list[tuple[Hold, Hold]]:
    """Pairs of holds of one item by two reviewers whose spans overlap: the item was handed out twice at once.

    The lease is one column (Item.leased_to): an item is leased to one reviewer at a time, and overlap is
    reached by leasing it again after each answer. So two spans of the same item must not overlap: the
    second claim can only commit after the first answer has released the item, and the first answer began
    before it released it.
    """
    by_item: dict[int, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_item[hold.item_id].append(hold)
    return [
        (a, b)
        for item_holds in by_item.values()
        for a, b in combinations(sorted(item_holds, key=lambda h: h.start_ns), 2)
        if b.start_ns < a.end_ns
    ]


def test_the_concurrent_hold_check_catches_an_item_handed_to_two_reviewers_at_once():
    # The check below is only worth something if it fails on over-leasing: here, item 7 is held by
    # reviewers 1 and 2 together (2 claimed it before 1 began answering); item 8 is leased one after the other.
    holds = [Hold(7, 1, 0, 100), Hold(7, 2, 50, 150), Hold(8, 1, 200, 300), Hold(8, 3, 301, 400)]

    assert concurrent_holds(holds) == [(holds[0], holds[1])]


@on_postgresql
def test_sixteen_reviewers_with_overlap_two_never_overlease_and_lose_no_answer(transactional_db, dataset, import_rows):
    import_rows(synthetic_rows(REVIEWERS * ANSWERS_EACH // 2 + 40, labelled=False), name="pool.csv")
    Dataset.objects.filter(pk=dataset.pk).update(overlap=OVERLAP)
    reviewers = [make_user(f"sixteen{i}", Role.REVIEWER, dataset=dataset) for i in range(REVIEWERS)]
    labels = list(LabelClass.objects.filter(dataset=dataset))
    saved: list[int] = []  # every answer the service returned (a 2xx through HTTP)
    errors: list[BaseException | str] = []
    holds: list[Hold] = []  # every item served, by whom, and when it was certainly theirs
    barrier = threading.Barrier(REVIEWERS)

    def work(user) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(user.pk)
        try:
            ds = Dataset.objects.get(pk=dataset.pk)
            barrier.wait()
            for _ in range(ANSWERS_EACH):
                queued = queue_next_item(dataset=ds, reviewer=user)
                if queued is None:
                    break
                start = time.monotonic_ns()
                # In the database, right after the lease: the item is this reviewer's alone, still open, short
                # of its overlap, and not one they answered (a lost conditional UPDATE would show here).
                if (
                    not Item.objects.filter(
                        pk=queued.item.pk, leased_to=user, queue_state=Item.QueueState.OPEN, answers_count__lt=OVERLAP
                    ).exists()
                    or Review.objects.filter(item_id=queued.item.pk, reviewer=user).exists()
                ):
                    errors.append(f"item {queued.item.pk} handed to {user.username} but not theirs to answer")
                answer = ReviewAnswer(label=rng.choice(labels), shown_prediction_id=queued.item.prediction_id)
                holds.append(Hold(queued.item.pk, user.pk, start, time.monotonic_ns()))
                try:
                    saved.append(review_submit(item_id=queued.item.pk, reviewer=user, answer=answer).pk)
                except ValidationError as exc:  # refused answers write nothing; none is expected here
                    errors.append(exc)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors[:3]
    assert len(saved) == REVIEWERS * ANSWERS_EACH
    # every answer the service confirmed is a row, and no row is unconfirmed
    assert sorted(Review.objects.filter(item__dataset=dataset).values_list("pk", flat=True)) == sorted(saved)
    # nobody answered an item twice, and no item has more answers than its overlap
    pairs = Counter(Review.objects.filter(item__dataset=dataset).values_list("item_id", "reviewer_id"))
    assert max(pairs.values()) == 1
    per_item = Counter(Review.objects.filter(item__dataset=dataset).values_list("item_id", flat=True))
    assert max(per_item.values()) <= OVERLAP
    # every served item was held by one reviewer at a time, and handed to no more reviewers than its overlap
    assert len(holds) == len(saved)
    assert concurrent_holds(holds) == []
    assert max(Counter(hold.item_id for hold in holds).values()) <= OVERLAP
    # the spans interleave across reviewers: the check above had concurrent work to judge
    assert len({hold.reviewer_id for hold in holds}) == REVIEWERS
    # answered twice → done or waiting for adjudication; answered once → still open
    for item in Item.objects.filter(dataset=dataset, pk__in=per_item):
        expected = (
            Item.QueueState.OPEN if per_item[item.pk] == 1 else (Item.QueueState.DONE, Item.QueueState.ADJUDICATE)
        )
        assert item.queue_state in (expected if isinstance(expected, tuple) else (expected,))
        assert item.answers_count == per_item[item.pk]
    counters = {k: v for k, v in dataset_counts(dataset_ids=[dataset.pk])[dataset.pk].items() if v}
    assert counters == counts_recount(dataset_id=dataset.pk)
    checked, broken = audit_chain_verify()
    assert broken is None and checked >= len(saved)
