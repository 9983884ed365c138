"""Sixteen reviewers at once with overlap 2, on PostgreSQL (issue 8): no item over-leased, no answer lost."""

from __future__ import annotations

import random
import threading
from collections import Counter

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

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="sixteen writers at once: PostgreSQL's row locks, not SQLite's one writer"
)

REVIEWERS = 16
ANSWERS_EACH = 50


def test_sixteen_reviewers_with_overlap_two_never_overlease_and_lose_no_answer(transactional_db, dataset, import_rows):
    import_rows(synthetic_rows(REVIEWERS * ANSWERS_EACH // 2 + 40, labelled=False), name="pool.csv")
    Dataset.objects.filter(pk=dataset.pk).update(overlap=2)
    reviewers = [make_user(f"sixteen{i}", Role.REVIEWER, dataset=dataset) for i in range(REVIEWERS)]
    labels = list(LabelClass.objects.filter(dataset=dataset))
    saved: list[int] = []  # every answer the service returned (a 2xx through HTTP)
    errors: list[BaseException] = []
    barrier = threading.Barrier(REVIEWERS)
    # Sampled while the reviewers work: how many live leases each item has (the column allows one; a
    # second lease table or a lost conditional UPDATE would show here as a duplicate).
    leases_seen: list[Counter] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                held = Item.objects.filter(dataset=dataset, leased_to__isnull=False).values_list("pk", flat=True)
                leases_seen.append(Counter(held))
        finally:
            connections.close_all()

    def work(user) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(user.pk)
        try:
            ds = Dataset.objects.get(pk=dataset.pk)
            barrier.wait()
            for _ in range(ANSWERS_EACH):
                queued = queue_next_item(dataset=ds, reviewer=user)
                if queued is None:
                    break
                answer = ReviewAnswer(label=rng.choice(labels), shown_prediction_id=queued.item.prediction_id)
                try:
                    saved.append(review_submit(item_id=queued.item.pk, reviewer=user, answer=answer).pk)
                except ValidationError as exc:  # refused answers write nothing; none is expected here
                    errors.append(exc)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    watcher.join(timeout=30)

    assert not errors, errors[:3]
    assert len(saved) == REVIEWERS * ANSWERS_EACH
    # every answer the service confirmed is a row, and no row is unconfirmed
    assert sorted(Review.objects.filter(item__dataset=dataset).values_list("pk", flat=True)) == sorted(saved)
    # nobody answered an item twice, and no item has more answers than its overlap
    pairs = Counter(Review.objects.filter(item__dataset=dataset).values_list("item_id", "reviewer_id"))
    assert max(pairs.values()) == 1
    per_item = Counter(Review.objects.filter(item__dataset=dataset).values_list("item_id", flat=True))
    assert max(per_item.values()) <= 2
    assert leases_seen and all(max(sample.values(), default=0) <= 1 for sample in leases_seen)
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
