"""Cancel a run a real Celery worker is training: the worker stops at its next progress step, nothing is
registered, no artifact is left behind, and the dataset is free for the next run (issue 9, point 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from annotations.models import ImportBatch
from governance.models import AuditEvent
from models_app.models import ModelVersion, TrainingRun
from models_app.services import training_run_request
from tests.conftest import login, synthetic_rows
from tests.worker import wait_for
from tests.worker_kill import SLOW_FIT_ENV, killable_worker_start

pytestmark = pytest.mark.worker


def _artifacts_of(run: TrainingRun) -> set[Path]:
    return set(Path(settings.ARTIFACT_ROOT).glob(f"dataset_{run.dataset_id}/run_{run.pk}-*"))


def test_a_running_run_cancelled_by_a_model_admin_stops_registers_nothing_and_frees_the_dataset(
    live_worker, dataset, model_admin, import_rows
):
    from models_app import tasks

    import_rows(synthetic_rows(20, start=0), name="seed.csv")
    import_rows(synthetic_rows(20, start=100), purpose=ImportBatch.Purpose.HOLDOUT, name="holdout.csv")
    queue = f"ml-cancel-{os.getpid()}"
    # The slowed fit sleeps before fitting; the cancel is noticed at the first progress step after it
    # ("Writing the artifact"), so a few seconds is enough to cancel it while it is running.
    slow = killable_worker_start(queue=queue, env={SLOW_FIT_ENV: "3"})
    try:
        with transaction.atomic():
            run = training_run_request(
                dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
            )
        # Files an earlier test left under the same ids (SQLite's flush reuses them; the folder is per process).
        before = _artifacts_of(run)
        tasks.training_run_execute.apply_async(args=[run.pk], queue=queue)  # to the slowed worker only

        def fitting() -> TrainingRun | None:
            current = TrainingRun.objects.get(pk=run.pk)
            return current if current.status == TrainingRun.Status.RUNNING and current.progress == 20 else None

        wait_for(fitting, 30, slow, "the slowed worker to be fitting")

        response = login(model_admin).post(
            f"/api/training-runs/{run.pk}/cancel/", {"reason": "wrong hyperparameters"}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        body = response.json()
        # Still running: the worker has not reached its next step yet; the request is recorded.
        assert body["status"] == "running" and body["cancel_requested_at"] is not None

        def ended() -> TrainingRun | None:
            current = TrainingRun.objects.get(pk=run.pk)
            return current if current.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING) else None

        stopped = wait_for(ended, 60, slow, "the cancelled run to stop")
    finally:
        slow.stop()

    assert stopped.status == TrainingRun.Status.CANCELLED, stopped.error
    assert stopped.finished_at is not None and stopped.stage == "Cancelled"
    assert not ModelVersion.objects.filter(training_run=stopped).exists()
    assert _artifacts_of(stopped) - before == set()
    actions = list(
        AuditEvent.objects.filter(object_type="training_run", object_id=str(run.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["training.requested", "training.started", "training.cancel_requested", "training.cancelled"]
    requested = AuditEvent.objects.get(object_id=str(run.pk), action="training.cancel_requested")
    assert requested.actor_id == model_admin.pk and requested.reason == "wrong hyperparameters"

    # The dataset is free: a new run is accepted and the session's worker trains it to a version.
    with transaction.atomic():
        second = training_run_request(
            dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, reason="after the cancel"
        )
    assert second.pk != run.pk
    done = wait_for(
        lambda: (
            (current := TrainingRun.objects.get(pk=second.pk)).status
            in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED)
            and current
        ),
        60,
        live_worker,
        "the next run to finish",
    )
    assert done.status == TrainingRun.Status.SUCCEEDED, done.error
    version = ModelVersion.objects.get(training_run=done)
    assert (Path(settings.ARTIFACT_ROOT) / version.artifact_path).is_file()
