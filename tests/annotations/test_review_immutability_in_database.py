"""The database itself (PostgreSQL or SQLite) refuses to change or delete a review or a read record."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from annotations.models import Item, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import DataAccess
from tests.conftest import login


def _one_review(dataset, reviewer) -> Review:  # type: ignore[no-untyped-def]
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    return review_submit(
        item_id=item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=item.prediction_id),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE annotations_review SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM annotations_review WHERE id = %s",
    ],
)
def test_database_refuses_to_rewrite_or_delete_a_review(trained_dataset, reviewer, statement):
    review = _one_review(trained_dataset, reviewer)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [review.pk])
    assert Review.objects.get(pk=review.pk).reason == ""


def test_database_refuses_to_delete_a_read_record(trained_dataset, reviewer):
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    assert Item.objects.filter(leased_to=reviewer).exists()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_dataaccess")
    assert DataAccess.objects.count() == 1


def test_database_refuses_to_rewrite_a_read_record(trained_dataset, reviewer):
    login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    record = DataAccess.objects.get()
    with (
        pytest.raises(DatabaseError, match=r"append-only \(UPDATE refused\)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE governance_dataaccess SET request_id = 'forged' WHERE id = %s", [record.pk])
    assert DataAccess.objects.get(pk=record.pk).request_id == record.request_id
