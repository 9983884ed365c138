"""The retraining policy and the outbox (models_app/services.py): the fifth new gold label queues exactly one run,
written first and sent to the broker after commit; the beat sweep sends what a broker outage or a lost after-commit
check left behind."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotations.models import Dataset, Item, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from governance.models import AuditEvent
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.services import PolicyChoice, retraining_policy_update, training_runs_sweep
from tests.helpers import answer_for, review_next


def _review_without_after_commit_work(dataset, reviewer, n: int) -> None:  # type: ignore[no-untyped-def]
    # The test's transaction never commits, so the after-commit policy check never
    # runs: exactly what a process killed right after the commit leaves behind.
    for _ in range(n):
        item = queue_next_item(dataset=dataset, reviewer=reviewer).item
        review_submit(
            item_id=item.pk,
            reviewer=reviewer,
            answer=ReviewAnswer(label=item.predicted_label, shown_prediction_id=item.prediction_id),
        )


def test_the_sweep_queues_the_run_a_lost_policy_check_missed(trained_dataset, reviewer):
    _review_without_after_commit_work(trained_dataset, reviewer, 5)  # the policy says: after 5
    assert not TrainingRun.objects.filter(dataset=trained_dataset, trigger=TrainingRun.Trigger.POLICY).exists()

    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
        training_runs_sweep()  # a second sweep finds the run already queued

    run = TrainingRun.objects.get(dataset=trained_dataset, trigger=TrainingRun.Trigger.POLICY)
    assert run.status == TrainingRun.Status.QUEUED
    assert "5 new gold labels" in run.reason


def test_the_sweep_leaves_a_dataset_below_its_threshold_or_disabled_alone(trained_dataset, reviewer):
    _review_without_after_commit_work(trained_dataset, reviewer, 4)
    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
    assert not TrainingRun.objects.filter(trigger=TrainingRun.Trigger.POLICY).exists()

    _review_without_after_commit_work(trained_dataset, reviewer, 1)
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(enabled=False)
    with mock.patch("models_app.tasks.training_run_execute.apply_async"):
        training_runs_sweep()
    assert not TrainingRun.objects.filter(trigger=TrainingRun.Trigger.POLICY).exists()


# --- The policy, after each review's commit -------------------------------------------------------------------


def _policy_runs(dataset: Dataset):
    return TrainingRun.objects.filter(dataset=dataset, trigger=TrainingRun.Trigger.POLICY)


def test_fifth_review_queues_exactly_one_policy_training_run(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            review_next(trained_dataset, reviewer)
    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()

    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)

    run = _policy_runs(trained_dataset).get()
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    assert run.status == TrainingRun.Status.QUEUED
    assert run.requested_by is None
    assert "5 new gold labels" in run.reason
    assert run.dispatched_at is not None
    assert AuditEvent.objects.filter(action="training.requested", object_id=str(run.pk)).count() == 1

    # While that run is queued, more reviews do not queue another.
    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)
    assert _policy_runs(trained_dataset).count() == 1
    broker.assert_called_once()


def test_a_policy_check_not_yet_met_is_one_statement_on_postgresql(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, django_assert_num_queries
):
    from models_app.services import retraining_policy_check

    with django_capture_on_commit_callbacks(execute=True):
        review_next(trained_dataset, reviewer)  # one new label of the five the policy asks for
    # PostgreSQL counts the new labels in the policy's own statement; SQLite cannot take a LIMIT from a row.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        assert retraining_policy_check(dataset_id=trained_dataset.pk) is None


def test_skips_do_not_count_towards_the_policy(trained_dataset, reviewer, django_capture_on_commit_callbacks, broker):
    for _ in range(6):
        item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
        with django_capture_on_commit_callbacks(execute=True):
            review_submit(
                item_id=item.pk,
                reviewer=reviewer,
                answer=ReviewAnswer(label=None, shown_prediction_id=item.prediction_id),
            )

    assert not _policy_runs(trained_dataset).exists()
    broker.assert_not_called()


def test_no_training_run_exists_when_the_fifth_review_rolls_back(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            review_next(trained_dataset, reviewer)
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    reviews = Review.objects.count()

    # The fifth review fails inside its transaction (its audit append), so nothing is sent after commit.
    with (
        mock.patch("annotations.services.audit_record", side_effect=RuntimeError("late failure")),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item))

    assert callbacks == []
    assert not _policy_runs(trained_dataset).exists()
    assert not AuditEvent.objects.filter(action="training.requested", actor__isnull=True).exists()
    assert Review.objects.count() == reviews
    broker.assert_not_called()


def test_broker_outage_keeps_the_review_and_the_run_is_sent_by_the_sweep(
    trained_dataset, reviewer, django_capture_on_commit_callbacks, broker
):
    broker.side_effect = OperationalError("Connection refused")
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            review = review_next(trained_dataset, reviewer)

    assert Review.objects.filter(pk=review.pk).exists()
    assert Item.objects.get(pk=review.item_id).queue_state == Item.QueueState.DONE
    run = _policy_runs(trained_dataset).get()
    assert broker.call_count == 1
    assert (run.status, run.dispatched_at) == (TrainingRun.Status.QUEUED, None)

    # The broker comes back; the beat sweep resends the run.
    broker.side_effect = None
    broker.reset_mock()
    sent = training_runs_sweep(now=timezone.now() + timedelta(seconds=30))

    assert sent == 1
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED
    assert run.dispatched_at is not None

    # A run that was just sent is not sent again by the next sweep.
    broker.reset_mock()
    assert training_runs_sweep(now=timezone.now() + timedelta(seconds=31)) == 0
    broker.assert_not_called()


# --- Policy settings ------------------------------------------------------------------------------------------


def test_a_huge_retraining_threshold_is_refused_and_the_policy_kept(dataset, model_admin):
    with pytest.raises(ValidationError, match="between 1 and"):
        retraining_policy_update(
            dataset=dataset, user=model_admin, choice=PolicyChoice(enabled=True, new_gold_labels=10**20)
        )
    assert RetrainingPolicy.objects.get(dataset=dataset).new_gold_labels == 5
