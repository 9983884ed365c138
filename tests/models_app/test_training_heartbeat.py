"""A running run whose worker stops sending heartbeats (kill -9, OOM, lost host) is re-queued by the beat sweep within
about two minutes, a bounded number of times, then failed; the retry reuses the snapshot the run froze; a redelivered
message of a run with a fresh heartbeat stays a no-op; the run page says what happened."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotations.models import ImportBatch
from governance.models import AuditEvent
from models_app.models import DatasetSnapshot, ModelVersion, TrainingRun
from models_app.services import training_run_request, training_runs_sweep
from models_app.training import snapshot_freeze, training_run_claim, training_run_execute
from tests.conftest import synthetic_rows

LOST = "the worker stopped sending heartbeats"


@pytest.fixture
def seeded(dataset, import_rows):  # type: ignore[no-untyped-def]
    import_rows(synthetic_rows(20, start=0), name="seed.csv")
    import_rows(synthetic_rows(20, start=100), purpose=ImportBatch.Purpose.HOLDOUT, name="holdout.csv")
    return dataset


def _killed_mid_run(dataset, model_admin, *, heartbeat_age_s: int = 600) -> TrainingRun:  # type: ignore[no-untyped-def]
    """A run claimed by a worker that froze its snapshot and then died (nothing reports back)."""
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, reason="kill", dispatch=False
    )
    assert training_run_claim(run_id=run.pk)
    snapshot_freeze(run=TrainingRun.objects.get(pk=run.pk))
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age_s))
    return TrainingRun.objects.get(pk=run.pk)


def test_a_claimed_run_has_a_heartbeat_and_counts_its_attempt(seeded, model_admin):
    run = training_run_request(
        dataset=seeded, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    assert (run.attempts, run.heartbeat_at) == (0, None)
    assert training_run_claim(run_id=run.pk)
    run.refresh_from_db()
    assert run.attempts == 1 and run.heartbeat_at is not None


def test_the_sweep_requeues_a_run_whose_heartbeat_is_stale_and_sends_it_again(seeded, model_admin, broker, settings):
    settings.LOUPE_HEARTBEAT_STALE_S = 120
    run = _killed_mid_run(seeded, model_admin, heartbeat_age_s=121)

    training_runs_sweep()

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED
    assert run.attempts == 1 and run.worker_lost_at is not None and run.progress == 0
    assert run.dispatched_at is not None
    broker.assert_called_once()
    assert broker.call_args.kwargs["args"] == [run.pk]
    event = AuditEvent.objects.get(action="training.requeued", object_id=str(run.pk))
    assert event.before == {"status": "running", "attempt": 1} and event.after == {"status": "queued", "attempt": 2}
    assert LOST in event.reason


def test_a_fresh_heartbeat_is_left_alone_however_long_the_run_has_been_going(seeded, model_admin, broker, settings):
    """The old rule (fail after CELERY_TASK_TIME_LIMIT + 300 s since start) is gone: only the heartbeat counts."""
    settings.LOUPE_HEARTBEAT_STALE_S = 120
    run = _killed_mid_run(seeded, model_admin, heartbeat_age_s=30)
    TrainingRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=3))

    training_runs_sweep()

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING
    broker.assert_not_called()
    assert not AuditEvent.objects.filter(action__in=["training.requeued", "training.failed"]).exists()


def test_a_redelivered_message_of_a_run_with_a_fresh_heartbeat_does_nothing(seeded, model_admin):
    run = _killed_mid_run(seeded, model_admin, heartbeat_age_s=5)
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TrainingRun.Status.RUNNING, 1)
    assert AuditEvent.objects.filter(action="training.started").count() == 1


def test_when_the_attempts_are_used_up_the_run_fails_with_a_clear_reason(seeded, model_admin, broker, settings):
    settings.LOUPE_TRAINING_MAX_ATTEMPTS = 3
    run = _killed_mid_run(seeded, model_admin)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=3)

    training_runs_sweep()

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.finished_at is not None
    assert run.error == "The worker stopped during training 3 times; not retried."
    broker.assert_not_called()
    event = AuditEvent.objects.get(action="training.failed", object_id=str(run.pk))
    assert LOST in event.reason
    # The dataset is free again: a new run can be requested.
    training_run_request(dataset=seeded, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False)


def test_the_retry_reuses_the_snapshot_the_run_froze_and_succeeds(seeded, model_admin, broker):
    run = _killed_mid_run(seeded, model_admin)
    frozen = run.snapshot_id
    training_runs_sweep()

    version = training_run_execute(run_id=run.pk)  # the redelivered attempt

    assert version is not None
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.attempts == 2
    assert run.snapshot_id == frozen and version.snapshot_id == frozen
    assert DatasetSnapshot.objects.filter(dataset=seeded).count() == 1  # no orphan
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    assert AuditEvent.objects.filter(action="snapshot.created").count() == 1
    reused = AuditEvent.objects.get(action="snapshot.reused")
    assert reused.after["training_run"] == run.pk and reused.after["attempt"] == 2


def test_the_run_page_and_the_overview_say_the_run_was_queued_again(seeded, model_admin, broker, client):
    run = _killed_mid_run(seeded, model_admin)
    training_runs_sweep()
    run.refresh_from_db()
    lost = timezone.localtime(run.worker_lost_at).strftime("%H:%M")
    client.force_login(model_admin)

    page = client.get(reverse("models_app:run_detail", args=[run.pk])).content.decode()
    assert f"Attempt 2 of 3: the worker running attempt 1 stopped at {lost} and the run was queued again." in page

    overview = client.get(reverse("models_app:overview", args=[seeded.pk])).content.decode()
    assert "attempt 2 of 3" in overview


def test_the_run_page_of_a_run_failed_for_lost_workers_says_so(seeded, model_admin, broker, client, settings):
    settings.LOUPE_TRAINING_MAX_ATTEMPTS = 1
    run = _killed_mid_run(seeded, model_admin)
    training_runs_sweep()
    client.force_login(model_admin)
    page = client.get(reverse("models_app:run_detail", args=[run.pk])).content.decode()
    assert "The worker stopped during training 1 time; not retried." in page
