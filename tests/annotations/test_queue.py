"""The review queue (annotations/queue.py): what it offers first, and leases so two reviewers never hold one item.

Parallel reviewers on real connections: test_queue_concurrency.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotations.models import Item
from annotations.queue import STRATEGY_LEAST_CONFIDENCE, queue_next_item
from annotations.services import review_submit
from tests.helpers import answer_for, review_counts


def test_queue_offers_the_least_confident_prediction_first(trained_dataset, reviewer):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)

    lowest = (
        Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
        .order_by("predicted_confidence", "id")
        .first()
    )
    assert queued.item.pk == lowest.pk
    assert queued.strategy == STRATEGY_LEAST_CONFIDENCE


# --- Leases ---------------------------------------------------------------------------------------------------


def test_two_reviewers_are_handed_different_items(trained_dataset, reviewer, reviewer2):
    first = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    second = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item

    assert first.pk != second.pk
    leases = dict(Item.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "leased_to"))
    assert leases == {first.pk: reviewer.pk, second.pk: reviewer2.pk}


def test_same_reviewer_asking_twice_keeps_the_item_they_hold(trained_dataset, reviewer):
    first = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    again = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item

    assert again.pk == first.pk
    assert Item.objects.filter(leased_to=reviewer).count() == 1


def test_expired_lease_lets_another_reviewer_take_the_item(trained_dataset, reviewer, reviewer2, broker):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    taken = queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item

    assert taken.pk == item.pk
    item.refresh_from_db()
    assert item.leased_to == reviewer2
    assert item.lease_expires_at > timezone.now()
    # The first reviewer's late answer no longer counts.
    before = review_counts()
    with pytest.raises(ValidationError, match="someone else"):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))
    assert review_counts() == before
    # The new holder can answer.
    assert review_submit(item_id=item.pk, reviewer=reviewer2, answer=answer_for(item)).reviewer == reviewer2
