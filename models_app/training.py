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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotations.models import Dataset, GoldLabel, Item
from annotations.signals import send_after_commit
from governance.audit import audit_record
from models_app.data import frame_for_items, labels_hash
from models_app.holdout_evaluation import HoldoutComparison, holdout_compare
from models_app.ml.algorithms import algorithm_get
from models_app.ml.algorithms.base import ModelSpec, TrainingDataError
from models_app.ml.algorithms.checks import training_data_check
from models_app.ml.algorithms.replay import replay_sample
from models_app.model_runtime import LoadedModel, model_load, model_spec
from models_app.models import (
    DatasetSnapshot,
    Evaluation,
    ModelVersion,
    RetrainingPolicy,
    SnapshotLabel,
    TrainingRun,
    TrainingTrigger,
)
from models_app.run_states import (
    TRANSIENT_ERRORS,
    RunCancelled,
    RunSuperseded,
    run_ended,
    run_heartbeat_touch,
    run_progress,
    run_requeue_after_transient_error,
    training_run_cancelled,
    training_run_claim,
    training_run_fail,
)
from models_app.signals import candidate_registered
from workflow_site.heartbeat import Heartbeat
from workflow_site.versions import code_version

logger = logging.getLogger(__name__)

__all__ = ["snapshot_freeze", "training_run_claim", "training_run_execute", "training_run_fail"]


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
            # Not items whose data retention removed: a new snapshot holds only data still held.
            GoldLabel.objects.filter(dataset=run.dataset, item__purged_at__isnull=True)
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
    fit_info: dict[str, Any]


def model_fit(algorithm: Any, frame: pd.DataFrame, labels: np.ndarray, **kwargs: Any) -> Any:
    """The fit itself (one seam, so a test can slow it down or make it fail without touching a family)."""
    return algorithm.fit(frame, labels, **kwargs)


@dataclass(frozen=True)
class _TrainingRows:
    item_ids: list[int]
    labels: np.ndarray
    warm_start: Any  # the champion's fitted model when fine-tuning, else None
    note: str  # what was trained on, in words (the run's stage and the version's fit info)


def _training_rows(run: TrainingRun, snapshot: DatasetSnapshot, spec: ModelSpec) -> _TrainingRows:
    """The snapshot's rows; when fine-tuning, the labels new since the champion's snapshot plus a seeded
    replay sample of the earlier ones (so it does not forget), warm-started from the champion."""
    rows = list(
        SnapshotLabel.objects.filter(snapshot=snapshot).order_by("item_id").values_list("item_id", "label__name")
    )
    ids = [item_id for item_id, _ in rows]
    labels = np.asarray([label for _, label in rows], dtype=object)
    everything = _TrainingRows(ids, labels, None, f"{len(ids)} gold labels, trained from scratch")
    if run.mode != RetrainingPolicy.Mode.FINE_TUNE:
        return everything
    champion = ModelVersion.objects.filter(dataset_id=run.dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    if champion is None or champion.algorithm != run.algorithm:
        why = "no champion" if champion is None else f"the champion is a {champion.algorithm}, not a {run.algorithm}"
        return _TrainingRows(ids, labels, None, f"{len(ids)} gold labels, from scratch: cannot fine-tune ({why})")
    seen = set(SnapshotLabel.objects.filter(snapshot_id=champion.snapshot_id).values_list("item_id", flat=True))
    new = [i for i, item_id in enumerate(ids) if item_id not in seen]
    old = [i for i, item_id in enumerate(ids) if item_id in seen]
    if not new:
        return _TrainingRows(ids, labels, None, f"{len(ids)} gold labels, from scratch: none is new to the champion")
    chosen = replay_sample(new, old, run.replay_fraction, run.seed, labels=labels, min_per_class=run.min_class_examples)
    return _TrainingRows(
        [ids[i] for i in chosen],
        labels[chosen],
        model_load(champion).fitted,
        f"fine-tuned from v{champion.version} on {len(new)} new gold labels and {len(chosen) - len(new)} replayed",
    )


def training_run_execute(*, run_id: int) -> ModelVersion | None:
    """Run a queued training run to a registered candidate (or to failed or cancelled). None if not claimed."""
    if not training_run_claim(run_id=run_id):
        logger.info("Training run %s was not queued (already claimed or gone); nothing to do.", run_id)
        return None
    run = TrainingRun.objects.select_related("dataset").get(pk=run_id)
    artifact_file: Path | None = None
    try:
        snapshot = snapshot_freeze(run=run)
        dataset = run.dataset
        algorithm = algorithm_get(run.algorithm)
        params = algorithm.validate_params(run.hyperparameters)
        spec = model_spec(dataset, with_text=algorithm.handles_text)
        if not spec.features:
            raise TrainingDataError(
                f"The dataset has no feature a {algorithm.label} can use"
                + ("" if algorithm.handles_text else " (it does not read free text: choose a text model)")
                + "."
            )
        classes = list(spec.class_names)
        chosen = _training_rows(run, snapshot, spec)
        warnings = training_data_check(chosen.labels, spec, run.min_class_examples)
        frame = frame_for_items(chosen.item_ids, list(spec.features))
        epochs = params.get("fine_tune_epochs" if chosen.warm_start is not None else "epochs")
        TrainingRun.objects.filter(pk=run.pk).update(epochs_total=epochs)
        run_progress(run, 20, f"Training {algorithm.label}: {chosen.note}")

        def progress(fraction: float, stage: str, epoch: int | None) -> None:
            run_progress(run, 20 + int(40 * min(max(fraction, 0.0), 1.0)), stage, epoch=epoch)

        with Heartbeat(touch=lambda: run_heartbeat_touch(run.pk), name=f"training run {run.pk}"):
            fitted = model_fit(
                algorithm,
                frame,
                chosen.labels,
                spec=spec,
                params=params,
                seed=run.seed,
                progress=progress,
                warm_start=chosen.warm_start,
            )

        run_progress(run, 60, "Writing the artifact")
        # Unique per attempt: a file is never overwritten, even if ids are reused after a restore.
        suffix = ".safetensors" if run.algorithm.startswith("torch_") else ".skops"
        relative = Path(f"dataset_{dataset.pk}") / f"run_{run.pk}-{uuid.uuid4().hex[:12]}{suffix}"
        artifact_file = Path(settings.ARTIFACT_ROOT) / relative
        sha256 = fitted.save(artifact_file)
        fit_info = {
            **asdict(fitted.info),
            "label": algorithm.label,
            "trained_on": chosen.note,
            "code_version": code_version(),
            "warnings": sorted(set(fitted.info.warnings) | set(warnings)),
        }

        run_progress(run, 75, "Evaluating on the sequestered holdout")
        champion = ModelVersion.objects.filter(dataset=dataset, stage=ModelVersion.Stage.CHAMPION).first()
        candidate = LoadedModel(version=ModelVersion(version=0), spec=spec, fitted=fitted, legacy=False)
        comparison = holdout_compare(dataset=dataset, candidate=candidate, champion=champion, seed=run.seed)

        run_progress(run, 90, "Registering the candidate")
        return _register(
            TrainedCandidate(
                run=run,
                snapshot=snapshot,
                artifact_path=relative,
                artifact_sha256=sha256,
                feature_names=[feature.name for feature in spec.features],
                class_names=classes,
                holdout=comparison,
                fit_info=fit_info,
            )
        )
    except RunSuperseded:
        logger.warning("Training run %s: a later attempt owns the run; this attempt's result is dropped.", run_id)
        if artifact_file is not None:
            artifact_file.unlink(missing_ok=True)
        return None
    except RunCancelled:
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
        run_requeue_after_transient_error(run)
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
            algorithm=run.algorithm,
            training_run=run,
            snapshot=snapshot,
            artifact_path=str(trained.artifact_path),
            artifact_sha256=trained.artifact_sha256,
            feature_names=trained.feature_names,
            class_names=trained.class_names,
            metrics={"holdout": holdout.candidate_metrics, "training_labels": snapshot.label_count},
            fit_info=trained.fit_info,
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
                raise RunCancelled  # asked to stop at the last moment: nothing is registered (this rolls back)
            # This worker was presumed lost and the run queued again: the newer attempt owns it.
            raise RunSuperseded(f"Training run {run.pk} attempt {run.attempts} was superseded by a later attempt.")
        run_ended(run.dataset_id)
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
        # Governance judges every candidate against the change envelope, once this commits.
        send_after_commit(candidate_registered, sender=ModelVersion, model_version_id=version.pk)
    return version
