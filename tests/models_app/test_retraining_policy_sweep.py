"""The beat sweep queues a run whose after-commit policy check was lost (a crash between commit and check)."""

from __future__ import annotations

from unittest import mock

from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.services import training_runs_sweep


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
