"""A real Celery worker process, on the configured broker (Redis in CI), trains a candidate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from annotations.models import ImportBatch
from governance.audit_chain import verify_chain
from governance.models import AuditEvent
from models_app.models import Evaluation, ModelVersion, TrainingRun
from models_app.services import training_run_request
from tests.conftest import synthetic_rows
from tests.worker import wait_for

pytestmark = pytest.mark.worker


def _seed(import_rows) -> None:  # type: ignore[no-untyped-def]
    import_rows(synthetic_rows(20, start=0), name="seed.csv")
    import_rows(synthetic_rows(20, start=100), purpose=ImportBatch.Purpose.HOLDOUT, name="holdout.csv")


def test_worker_process_takes_a_run_from_queued_to_registered_candidate(live_worker, dataset, model_admin, import_rows):
    _seed(import_rows)
    with transaction.atomic():
        run = training_run_request(
            dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, reason="worker test"
        )
        assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.QUEUED

    def finished() -> TrainingRun | None:
        current = TrainingRun.objects.get(pk=run.pk)
        return current if current.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED) else None

    done = wait_for(finished, 120, live_worker, "the training run to finish")
    assert done.status == TrainingRun.Status.SUCCEEDED, done.error
    assert done.dispatched_at is not None and done.started_at is not None and done.finished_at is not None
    version = ModelVersion.objects.get(training_run=done)
    assert version.stage == ModelVersion.Stage.CANDIDATE
    artifact = Path(settings.ARTIFACT_ROOT) / version.artifact_path
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == version.artifact_sha256
    assert version.snapshot.label_count == 20  # the seed only: the holdout is never trained on
    evaluation = Evaluation.objects.get(training_run=done, role="candidate")
    assert evaluation.holdout_size == 20 and evaluation.metrics["accuracy"] > 0.8
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    for action in (
        "training.requested",
        "training.started",
        "snapshot.created",
        "model_version.registered",
        "training.finished",
    ):
        assert action in actions
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None and checked == len(actions)


def test_a_redelivered_training_task_does_not_train_twice(live_worker, dataset, model_admin, import_rows):
    """A duplicate delivery is consumed without training; judged by state, never by the worker's log lines."""
    from models_app import tasks

    _seed(import_rows)
    with transaction.atomic():
        first = training_run_request(
            dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, reason="twice"
        )
    tasks.training_run_execute.apply_async(args=[first.pk])  # the duplicate delivery
    wait_for(
        lambda: TrainingRun.objects.get(pk=first.pk).status == TrainingRun.Status.SUCCEEDED,
        120,
        live_worker,
        "the first run to succeed",
    )
    # A later run goes through the same queue behind the duplicate (one solo worker,
    # first in, first out): once it has finished, the duplicate has been consumed.
    with transaction.atomic():
        second = training_run_request(
            dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, reason="after it"
        )
    wait_for(
        lambda: TrainingRun.objects.get(pk=second.pk).status == TrainingRun.Status.SUCCEEDED,
        120,
        live_worker,
        "the second run to succeed",
    )

    assert ModelVersion.objects.filter(training_run=first).count() == 1
    assert ModelVersion.objects.filter(dataset=dataset).count() == 2
    started = AuditEvent.objects.filter(action="training.started").values_list("object_id", flat=True)
    assert sorted(started) == sorted([str(first.pk), str(second.pk)])
