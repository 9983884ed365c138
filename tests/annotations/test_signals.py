"""After-commit signals (annotations/signals.py): the retraining policy check runs after the review commits,
so a bug in models_app can never undo a reviewer's answer."""

from __future__ import annotations

from unittest import mock

from django.urls import reverse

from annotations.models import GoldLabel, Review
from annotations.queue import queue_next_item
from annotations.services import review_submit
from annotations.signals import gold_labels_changed
from governance.models import AuditEvent
from tests.helpers import answer_for, login


def test_review_is_saved_even_when_the_retraining_policy_check_raises(
    trained_dataset, reviewer, broker, django_capture_on_commit_callbacks
):
    """The policy check runs after the review commits: a bug in models_app cannot undo a reviewer's answer."""
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    client = login(reviewer)

    with mock.patch("models_app.services.retraining_policy_check", side_effect=RuntimeError("policy bug")) as check:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("annotations:review_submit", args=[trained_dataset.pk, item.pk]),
                {"label": item.predicted_label.name, "shown_prediction": item.prediction_id},
                HTTP_HX_REQUEST="true",
            )

    assert check.called, "the policy check ran (after commit) and raised"
    assert response.status_code == 200
    review = Review.objects.get(item=item)
    assert review.decision == Review.Decision.ACCEPT
    assert GoldLabel.objects.get(item=item).review == review
    assert AuditEvent.objects.filter(action="review.submitted", object_id=str(item.pk)).exists()


def test_policy_check_runs_outside_the_review_transaction(trained_dataset, reviewer, broker):
    """Nothing is checked while the review's transaction is open; the check waits for the commit."""
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    seen = []
    gold_labels_changed.connect(
        lambda **kw: seen.append(kw["dataset_id"]), dispatch_uid="test-after-commit", weak=False
    )
    try:
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))
        assert seen == [], "a receiver ran inside the review's transaction"
    finally:
        gold_labels_changed.disconnect(dispatch_uid="test-after-commit")
