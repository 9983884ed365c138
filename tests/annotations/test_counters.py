"""Counters (issue 7, point 3): always equal to a fresh count of the items, without counting them."""

from __future__ import annotations

import random
from datetime import timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from annotations.counters import counts_fold, counts_recount, dataset_counts
from annotations.models import ImportBatch, Item, ItemCountDelta
from annotations.queue import queue_next_item
from annotations.retention import items_purge
from annotations.selectors import dataset_open_count, dataset_queue_counts
from annotations.services import ImportRejected, import_batch_create, review_submit
from tests.helpers import answer_for, csv_bytes, make_user, synthetic_rows
from workflow_site.access import Role


def _counters(dataset_id: int) -> dict[str, int]:
    return {k: v for k, v in dataset_counts(dataset_ids=[dataset_id])[dataset_id].items() if v}


def test_counters_equal_a_fresh_count_after_a_random_mix_of_work(trained_dataset, model_admin):
    rng = random.Random(7)
    reviewers = [make_user(f"mix{n}", Role.REVIEWER, dataset=trained_dataset) for n in range(3)]
    next_id = 10_000
    for step in range(60):
        move = rng.choice(["review", "review", "review", "skip", "import", "bad-import", "expire", "fold", "purge"])
        if move in {"review", "skip"}:
            reviewer = rng.choice(reviewers)
            queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
            if queued is None:
                continue
            answer = answer_for(queued.item, accept=rng.random() < 0.7)
            if move == "skip":
                answer = answer.__class__(label=None, shown_prediction_id=answer.shown_prediction_id, reason="skip")
            review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer)
        elif move == "import":
            n = rng.randint(1, 6)
            rows = synthetic_rows(n, start=next_id, labelled=rng.random() < 0.5, prefix="mix")
            next_id += n
            purpose = rng.choice([ImportBatch.Purpose.REVIEW, ImportBatch.Purpose.HOLDOUT])
            if purpose == ImportBatch.Purpose.HOLDOUT:
                rows = synthetic_rows(n, start=next_id, labelled=True, prefix="mixh")
                next_id += n
            import_batch_create(
                dataset=trained_dataset, user=model_admin, file_name="mix.csv", data=csv_bytes(rows), purpose=purpose
            )
        elif move == "bad-import":
            try:
                import_batch_create(
                    dataset=trained_dataset,
                    user=model_admin,
                    file_name="bad.csv",
                    data=b"external_id\n",
                    purpose="review",
                )
            except ImportRejected:
                pass
        elif move == "expire":
            Item.objects.filter(dataset=trained_dataset, lease_expires_at__isnull=False).update(
                lease_expires_at=timezone.now() - timedelta(seconds=1)
            )
        elif move == "purge":  # retention empties a few items, some open (one may be leased), some done
            unpurged = Item.objects.filter(dataset=trained_dataset, purged_at__isnull=True)
            ids = list(unpurged.values_list("pk", flat=True))
            with transaction.atomic():
                items_purge(item_ids=rng.sample(ids, min(3, len(ids))), now=timezone.now())
        else:
            counts_fold(dataset_id=trained_dataset.pk)
        assert _counters(trained_dataset.pk) == counts_recount(dataset_id=trained_dataset.pk), (
            f"after step {step}: {move}"
        )


def test_folding_keeps_the_totals_and_leaves_one_row_per_key(trained_dataset, reviewer):
    for _ in range(5):
        queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
        review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    before = _counters(trained_dataset.pk)
    rows = ItemCountDelta.objects.filter(dataset=trained_dataset)
    assert rows.count() > len(before)

    removed = counts_fold(dataset_id=trained_dataset.pk)

    assert removed > 0
    assert _counters(trained_dataset.pk) == before
    assert rows.count() == len(before)
    assert counts_fold(dataset_id=trained_dataset.pk) == 0, "folding again changes nothing"


def test_pages_read_counters_not_items(trained_dataset, django_assert_num_queries):
    with mock.patch.object(Item.objects, "count", side_effect=AssertionError("counted the items")):
        counts = dataset_queue_counts(dataset=trained_dataset)
        open_now = dataset_open_count(dataset=trained_dataset)
    recount = counts_recount(dataset_id=trained_dataset.pk)
    assert counts["open"] == open_now == recount["state:open"]
    assert counts["holdout"] == recount["state:holdout"]
    with django_assert_num_queries(1):
        dataset_queue_counts(dataset=trained_dataset)


def test_a_rolled_back_answer_leaves_the_counters_as_they_were(trained_dataset, reviewer):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    before = _counters(trained_dataset.pk)
    with mock.patch("annotations.services.audit_record", side_effect=RuntimeError("audit down")):
        try:
            review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
        except RuntimeError:
            pass
    assert _counters(trained_dataset.pk) == before


def test_items_purged_while_open_are_no_longer_awaiting_review(trained_dataset, reviewer, model_admin):
    from django.urls import reverse

    from tests.helpers import login

    held = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    other_open = Item.objects.filter(dataset=trained_dataset, queue_state="open").exclude(pk=held.pk).first()
    before = dataset_queue_counts(dataset=trained_dataset)

    with transaction.atomic():
        assert items_purge(item_ids=[held.pk, other_open.pk], now=timezone.now()) == 2

    after = dataset_queue_counts(dataset=trained_dataset)
    assert after["open"] == before["open"] - 2 == dataset_open_count(dataset=trained_dataset)
    assert after["total"] == before["total"] and after["purged_unreviewed"] == 2
    assert _counters(trained_dataset.pk) == counts_recount(dataset_id=trained_dataset.pk)
    # The queue agrees: as many items are served as the counter promises, none of them purged.
    served = []
    while (queued := queue_next_item(dataset=trained_dataset, reviewer=reviewer)) is not None:
        served.append(queued.item.pk)
        review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    assert len(served) == after["open"] and not {held.pk, other_open.pk} & set(served)
    assert dataset_open_count(dataset=trained_dataset) == 0
    page = login(model_admin).get(reverse("annotations:dataset_detail", args=[trained_dataset.pk])).content.decode()
    assert "2 more purged by retention before anyone reviewed them" in page
