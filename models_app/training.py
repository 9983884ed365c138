"""One training run, start to finish, as the Celery worker executes it.

claim → freeze snapshot → train → write artifact → evaluate candidate and
champion on the sequestered holdout → register the candidate version.
Each step that changes state is its own transaction with its audit event.
A run is claimed with a conditional UPDATE (queued → running), so a task that
is delivered twice trains once.

While it runs, the worker touches the run's heartbeat at every stage and, from a
background thread, every LOUPE_HEARTBEAT_EVERY_S while it fits. A worker that is
killed stops the heartbeat; the beat sweep (services.training_runs_sweep) then
queues the run again (training_run_requeue_lost) or, after
LOUPE_TRAINING_MAX_ATTEMPTS attempts, fails it. The retry reuses the snapshot
the first attempt froze, so no snapshot is left without its run.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Max
from django.utils import timezone

from annotations.models import Dataset, GoldLabel, Item
from governance.audit import audit_record
from models_app.data import class_names, feature_specs, frame_for_items, holdout_labels, labels_hash
from models_app.ml import baseline
from models_app.ml.artifacts import save_model
from models_app.ml.metrics import classification_metrics
from models_app.models import DatasetSnapshot, Evaluation, ModelVersion, SnapshotLabel, TrainingRun, TrainingTrigger
from models_app.prediction import model_load
from workflow_site.heartbeat import Heartbeat

logger = logging.getLogger(__name__)
# The database going away mid-run (restart, failover, a dropped connection): retried, never "failed".
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def _run_transition(
    *,
    run_id: int,
    from_status: str,
    action: str,
    after: dict[str, Any],
    reason: str = "",
    only_if: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    on_moved: Any = None,
    **changes: Any,
) -> TrainingRun | None:
    """Move a run out of `from_status` with a conditional UPDATE and, if it moved, audit it in the same transaction.

    The UPDATE ... WHERE status = from_status (and `only_if`) is the claim: of
    two callers (a redelivered task, the sweep and the worker) exactly one moves
    the run. Returns the moved run, or None when it was not in that state.
    """
    with transaction.atomic():
        moved = TrainingRun.objects.filter(pk=run_id, status=from_status, **(only_if or {})).update(**changes)
        if not moved:
            return None
        run = TrainingRun.objects.get(pk=run_id)
        audit_record(
            actor=None,
            action=action,
            obj=run,
            object_type="training_run",
            dataset_id=run.dataset_id,
            before={"status": from_status, **(before or {})},
            after=after,
            reason=reason,
        )
        if on_moved is not None:
            on_moved(run)
    return run


def training_run_claim(*, run_id: int) -> bool:
    """queued → running, once. False if another delivery already claimed it, or if another run of the
    same dataset is running (this one is queued behind it and is dispatched when that one ends).

    A run that is running (with a fresh heartbeat or not) is never claimed
    here: only the sweep moves a lost run back to queued, so two workers never
    train the same run. The dataset row is locked first (lock order), so two
    queued runs of one dataset (a lost run re-queued beside a newer one) are
    never claimed at once.
    """
    now = timezone.now()
    with transaction.atomic():
        dataset_id = TrainingRun.objects.filter(pk=run_id).values_list("dataset_id", flat=True).first()
        if dataset_id is None:
            return False
        Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        if TrainingRun.objects.filter(dataset_id=dataset_id, status=TrainingRun.Status.RUNNING).exists():
            return False
        claimed = _run_transition(
            run_id=run_id,
            from_status=TrainingRun.Status.QUEUED,
            action="training.started",
            after={"status": "running"},
            status=TrainingRun.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            stage="Freezing the snapshot",
            progress=5,
            epoch=None,
        )
    return claimed is not None


class _Cancelled(Exception):
    """A model admin asked to stop this run (training_run_cancel)."""


def _progress(run: TrainingRun, progress: int, stage: str, *, epoch: int | None = None) -> None:
    """Show where the run is; the one statement also notices a cancel request or a newer attempt.

    The UPDATE only matches a running run of this attempt that nobody asked to
    stop: when it matches nothing, one more read says which, and the fit stops
    (raised from the algorithm's progress callback, so between two epochs).
    """
    changes: dict[str, Any] = {"progress": progress, "stage": stage, "heartbeat_at": timezone.now()}
    if epoch is not None:
        changes["epoch"] = epoch
    mine = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, attempts=run.attempts)
    if mine.filter(cancel_requested_at__isnull=True).update(**changes):
        return
    if mine.filter(cancel_requested_at__isnull=False).exists():
        raise _Cancelled
    raise _Superseded(f"Training run {run.pk} attempt {run.attempts} is no longer the running attempt.")


def _heartbeat_touch(run_id: int) -> None:
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())


def _run_ended(dataset_id: int) -> None:
    """After a run ends, in its transaction: the run queued behind it (coalesced triggers) goes to the broker."""
    from models_app.services import training_run_dispatch_next

    transaction.on_commit(lambda: training_run_dispatch_next(dataset_id=dataset_id))


def training_run_requeue_lost(*, run_id: int, lost_at: Any, max_attempts: int) -> TrainingRun | None:
    """running → queued (another attempt) or running → failed (attempts used up), for a run whose worker stopped.

    Called by the sweep for a run whose heartbeat is stale. The conditional
    UPDATE also checks the heartbeat has not moved since the sweep read it, so a
    worker that was only slow and beat in the meantime keeps its run.
    Returns the run if it moved.
    """
    run = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).first()
    if run is None:
        return None
    reason = (
        f"the worker stopped sending heartbeats (last at {lost_at.isoformat() if lost_at else 'never'}) "
        f"during attempt {run.attempts} of {max_attempts}"
    )
    lost = {
        "run_id": run_id,
        "from_status": TrainingRun.Status.RUNNING,
        # Unless the worker was only slow and beat since the sweep read the run.
        "only_if": {"heartbeat_at": lost_at},
        "before": {"attempt": run.attempts},
        "reason": reason,
        "worker_lost_at": lost_at,
    }
    if run.attempts < max_attempts:
        return _run_transition(
            **lost,
            action="training.requeued",
            after={"status": "queued", "attempt": run.attempts + 1},
            status=TrainingRun.Status.QUEUED,
            progress=0,
            stage=f"Queued again after attempt {run.attempts}: the worker stopped",
            dispatched_at=None,
        )
    times = "time" if run.attempts == 1 else "times"
    error = f"The worker stopped during training {run.attempts} {times}; not retried."
    return _run_transition(
        **lost,
        action="training.failed",
        after={"status": "failed", "error": error},
        status=TrainingRun.Status.FAILED,
        finished_at=timezone.now(),
        stage="Failed",
        error=error,
    )


def snapshot_freeze(*, run: TrainingRun) -> DatasetSnapshot:
    """Freeze the exact gold labels (never the holdout) this run trains on.

    A retried run (its first worker was killed) trains on the snapshot its first
    attempt froze: same labels, same lineage, and no snapshot left orphaned.
    """
    if run.snapshot_id is not None:
        with transaction.atomic():
            snapshot = DatasetSnapshot.objects.get(pk=run.snapshot_id)
            audit_record(
                actor=None,
                action="snapshot.reused",
                obj=snapshot,
                object_type="dataset_snapshot",
                dataset_id=run.dataset_id,
                after={"training_run": run.pk, "attempt": run.attempts, "content_hash": snapshot.content_hash},
            )
        run.snapshot = snapshot
        _triggers_answered(run, snapshot)
        return snapshot
    with transaction.atomic():
        golds = list(
            GoldLabel.objects.filter(dataset=run.dataset)
            .exclude(item__queue_state=Item.QueueState.HOLDOUT)
            .order_by("item_id")
            .values_list("pk", "item_id", "item__content_hash", "label_id", "label__name", "review_id")
        )
        content_hash = labels_hash((item_id, content, label) for _, item_id, content, _, label, _ in golds)
        snapshot = DatasetSnapshot.objects.create(
            dataset=run.dataset, label_count=len(golds), content_hash=content_hash
        )
        SnapshotLabel.objects.bulk_create(
            [
                SnapshotLabel(
                    snapshot=snapshot, item_id=item_id, label_id=label_id, gold_label_id=gold_id, review_id=review_id
                )
                for gold_id, item_id, _, label_id, _, review_id in golds
            ],
            batch_size=2000,
        )
        TrainingRun.objects.filter(pk=run.pk).update(snapshot=snapshot)
        run.snapshot = snapshot
        triggers = _triggers_answered(run, snapshot)
        audit_record(
            actor=None,
            action="snapshot.created",
            obj=snapshot,
            object_type="dataset_snapshot",
            dataset_id=run.dataset_id,
            after={
                "training_run": run.pk,
                "label_count": len(golds),
                "content_hash": content_hash,
                "answers_triggers": triggers,
            },
        )
    return snapshot


def _triggers_answered(run: TrainingRun, snapshot: DatasetSnapshot) -> list[int]:
    """The run's triggers are answered by this snapshot. The run was claimed, so no trigger joins it any more
    (services.training_run_request folds new ones into a queued run only)."""
    TrainingTrigger.objects.filter(run=run, snapshot__isnull=True).update(snapshot=snapshot)
    return list(TrainingTrigger.objects.filter(run=run).order_by("pk").values_list("pk", flat=True))


class _Superseded(Exception):
    """This attempt's worker was presumed lost (stale heartbeat) and the run was queued again."""


@dataclass(frozen=True)
class HoldoutComparison:
    """Candidate and champion measured on the same sequestered holdout."""

    size: int
    labels_hash: str
    candidate_metrics: dict[str, Any]
    champion: ModelVersion | None
    champion_metrics: dict[str, Any] | None  # None: no champion, or it could not be evaluated


@dataclass(frozen=True)
class TrainedCandidate:
    """What one training run produced, ready to be registered as a model version."""

    run: TrainingRun
    snapshot: DatasetSnapshot
    artifact_path: Path  # relative to ARTIFACT_ROOT
    artifact_sha256: str
    feature_names: list[str]
    class_names: list[str]
    holdout: HoldoutComparison


def _evaluate(model: object, holdout: list[tuple[int, str, str]], specs: list, classes: list[str]) -> dict:
    if not holdout:
        return {"n": 0}
    frame = frame_for_items([item_id for item_id, _, _ in holdout], specs)
    proba = baseline.predict_proba(model, frame, classes)
    return classification_metrics([label for _, _, label in holdout], proba, classes)


def _champion_metrics(champion: ModelVersion, holdout: list, specs: list, classes: list[str]) -> dict | None:
    """The champion's metrics on today's holdout; None (logged) if it cannot be evaluated.

    A champion whose artifact fails its hash check, or whose classes no longer
    match the schema, must not stop a new candidate from being trained: the
    comparison is then shown as missing, and promotion review sees that.
    """
    try:
        return _evaluate(model_load(champion), holdout, specs, classes)
    except Exception:
        logger.exception("Could not evaluate champion v%s on the holdout", champion.version)
        return None


def training_run_execute(*, run_id: int) -> ModelVersion | None:
    """Run a queued training run to a registered candidate (or to failed). None if not claimed."""
    if not training_run_claim(run_id=run_id):
        logger.info("Training run %s was not queued (already claimed or gone); nothing to do.", run_id)
        return None
    run = TrainingRun.objects.select_related("dataset").get(pk=run_id)
    artifact_file: Path | None = None
    try:
        snapshot = snapshot_freeze(run=run)
        dataset = run.dataset
        specs = feature_specs(dataset)
        if not specs:
            raise ValueError(
                "The dataset has no feature today's models can use: free-text features are shown to "
                "reviewers but not yet learned from. Add a number, yes/no or category feature."
            )
        classes = class_names(dataset)
        _progress(run, 20, f"Training on {snapshot.label_count} gold labels")
        rows = list(
            SnapshotLabel.objects.filter(snapshot=snapshot).order_by("item_id").values_list("item_id", "label__name")
        )
        frame = frame_for_items([item_id for item_id, _ in rows], specs)
        with Heartbeat(touch=lambda: _heartbeat_touch(run.pk), name=f"training run {run.pk}"):
            model = baseline.train(frame, [label for _, label in rows], specs, classes, seed=run.pk)

        _progress(run, 60, "Writing the artifact")
        # Unique per attempt: a file is never overwritten, even if ids are reused after a restore.
        relative = Path(f"dataset_{dataset.pk}") / f"run_{run.pk}-{uuid.uuid4().hex[:12]}.skops"
        artifact_file = Path(settings.ARTIFACT_ROOT) / relative
        sha256 = save_model(model, artifact_file)

        _progress(run, 75, "Evaluating on the sequestered holdout")
        holdout = holdout_labels(dataset)
        champion = ModelVersion.objects.filter(dataset=dataset, stage=ModelVersion.Stage.CHAMPION).first()
        comparison = HoldoutComparison(
            size=len(holdout),
            labels_hash=labels_hash(holdout),
            candidate_metrics=_evaluate(model, holdout, specs, classes),
            champion=champion,
            champion_metrics=_champion_metrics(champion, holdout, specs, classes) if champion else None,
        )

        _progress(run, 90, "Registering the candidate")
        return _register(
            TrainedCandidate(
                run=run,
                snapshot=snapshot,
                artifact_path=relative,
                artifact_sha256=sha256,
                feature_names=[spec.name for spec in specs],
                class_names=classes,
                holdout=comparison,
            )
        )
    except _Superseded:
        logger.warning("Training run %s: a later attempt owns the run; this attempt's result is dropped.", run_id)
        if artifact_file is not None:
            artifact_file.unlink(missing_ok=True)
        return None
    except _Cancelled:
        if artifact_file is not None:
            artifact_file.unlink(missing_ok=True)
        training_run_cancelled(run_id=run_id, attempt=run.attempts)
        return None
    except TRANSIENT_ERRORS:
        # The database went away (restart, failover): not the run's fault. Back to queued if the database
        # answers again now, and the task retries with backoff (tasks.py); if it does not, the heartbeat
        # goes stale and the sweep re-queues the run. Never marked failed for this.
        if artifact_file is not None:
            artifact_file.unlink(missing_ok=True)
        _requeue_after_transient_error(run)
        raise
    except Exception as exc:  # any failure ends the run as failed, with its reason
        logger.exception("Training run %s failed", run_id)
        if artifact_file is not None:
            artifact_file.unlink(missing_ok=True)
        training_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc(limit=5))
        return None


def _register(trained: TrainedCandidate) -> ModelVersion:
    """Register the candidate version, its evaluations, and the run's success, in one transaction."""
    run, snapshot, holdout = trained.run, trained.snapshot, trained.holdout
    with transaction.atomic():
        # Lock the dataset row so two runs cannot take the same number
        # (select_for_update() is dropped from an aggregate query).
        Dataset.objects.select_for_update(no_key=True).get(pk=run.dataset_id)
        last = ModelVersion.objects.filter(dataset=run.dataset).aggregate(m=Max("version"))["m"]
        version = ModelVersion.objects.create(
            dataset=run.dataset,
            version=(last or 0) + 1,
            algorithm=baseline.ALGORITHM,
            training_run=run,
            snapshot=snapshot,
            artifact_path=str(trained.artifact_path),
            artifact_sha256=trained.artifact_sha256,
            feature_names=trained.feature_names,
            class_names=trained.class_names,
            metrics={"holdout": holdout.candidate_metrics, "training_labels": snapshot.label_count},
        )
        Evaluation.objects.create(
            training_run=run,
            model_version=version,
            role=Evaluation.Role.CANDIDATE,
            holdout_size=holdout.size,
            holdout_hash=holdout.labels_hash,
            metrics=holdout.candidate_metrics,
        )
        if holdout.champion is not None and holdout.champion_metrics is not None:
            Evaluation.objects.create(
                training_run=run,
                model_version=holdout.champion,
                role=Evaluation.Role.CHAMPION,
                holdout_size=holdout.size,
                holdout_hash=holdout.labels_hash,
                metrics=holdout.champion_metrics,
            )
        mine = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, attempts=run.attempts)
        if not mine.filter(cancel_requested_at__isnull=True).update(
            status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now(), progress=100, stage="Done"
        ):
            if mine.filter(cancel_requested_at__isnull=False).exists():
                raise _Cancelled  # asked to stop at the last moment: nothing is registered (this rolls back)
            # This worker was presumed lost and the run queued again: the newer attempt owns it.
            raise _Superseded(f"Training run {run.pk} attempt {run.attempts} was superseded by a later attempt.")
        _run_ended(run.dataset_id)
        audit_record(
            actor=None,
            action="model_version.registered",
            obj=version,
            object_type="model_version",
            dataset_id=run.dataset_id,
            after={
                "version": version.version,
                "artifact_sha256": trained.artifact_sha256,
                "training_run": run.pk,
                "snapshot": snapshot.pk,
                "snapshot_hash": snapshot.content_hash,
                "holdout_accuracy": holdout.candidate_metrics.get("accuracy"),
            },
        )
        audit_record(
            actor=None,
            action="training.finished",
            obj=run,
            object_type="training_run",
            dataset_id=run.dataset_id,
            before={"status": "running"},
            after={"status": "succeeded", "model_version": version.version},
        )
    return version


def training_run_cancelled(*, run_id: int, attempt: int) -> None:
    """running → cancelled, once the worker has stopped (a model admin asked: services.training_run_cancel)."""
    with transaction.atomic():
        moved = _run_transition(
            run_id=run_id,
            from_status=TrainingRun.Status.RUNNING,
            action="training.cancelled",
            after={"status": "cancelled"},
            only_if={"attempts": attempt, "cancel_requested_at__isnull": False},
            status=TrainingRun.Status.CANCELLED,
            finished_at=timezone.now(),
            stage="Cancelled",
        )
        if moved is not None:
            _run_ended(moved.dataset_id)


def _requeue_after_transient_error(run: TrainingRun) -> None:
    try:
        _run_transition(
            run_id=run.pk,
            from_status=TrainingRun.Status.RUNNING,
            action="training.requeued",
            after={"status": "queued", "attempt": run.attempts + 1},
            only_if={"attempts": run.attempts},
            reason="a transient database error; the task retries",
            status=TrainingRun.Status.QUEUED,
            progress=0,
            stage="Queued again after a transient database error",
            dispatched_at=timezone.now(),  # the task's own retry carries it: the sweep need not resend yet
        )
    except TRANSIENT_ERRORS:
        logger.warning("Training run %s: the database is still away; the sweep will re-queue it.", run.pk)


def training_run_fail(*, run_id: int, error: str, detail: str = "") -> None:
    """running → failed, with the reason; nothing happens to a run that is no longer running."""
    _run_transition(
        run_id=run_id,
        from_status=TrainingRun.Status.RUNNING,
        action="training.failed",
        after={"status": "failed", "error": error[:500]},
        reason=detail[-1500:],
        status=TrainingRun.Status.FAILED,
        finished_at=timezone.now(),
        error=error[:2000],
        stage="Failed",
        on_moved=lambda run: _run_ended(run.dataset_id),
    )
