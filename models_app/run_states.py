"""A training run's states and their moves: queued → running → succeeded / failed / cancelled, and back.

Every move is a conditional UPDATE with its audit event in the same transaction
(`_run_transition`), so of two callers (a redelivered task, the sweep and the
worker, a model admin cancelling) exactly one moves the run. training.py
drives a run through these; services.py (the sweep, cancel) calls them too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import Dataset
from governance.audit import audit_record
from models_app.models import TrainingRun

logger = logging.getLogger(__name__)
# The database going away mid-run (restart, failover, a dropped connection): retried, never "failed".
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class RunSuperseded(Exception):
    """This attempt's worker was presumed lost (stale heartbeat) and the run was queued again."""


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


class RunCancelled(Exception):
    """A model admin asked to stop this run (training_run_cancel)."""


def run_progress(run: TrainingRun, progress: int, stage: str, *, epoch: int | None = None) -> None:
    """Show where the run is; the one statement also notices a cancel request or a newer attempt.

    The UPDATE only matches a running run of this attempt that nobody asked to
    stop: when it matches nothing, one more read says which, and the fit stops
    (raised from the algorithm's progress callback, so between two epochs).
    """
    stage = stage if len(stage) <= 100 else stage[:99] + "…"  # TrainingRun.stage holds 100 characters
    changes: dict[str, Any] = {"progress": progress, "stage": stage, "heartbeat_at": timezone.now()}
    if epoch is not None:
        changes["epoch"] = epoch
    mine = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, attempts=run.attempts)
    if mine.filter(cancel_requested_at__isnull=True).update(**changes):
        return
    if mine.filter(cancel_requested_at__isnull=False).exists():
        raise RunCancelled
    raise RunSuperseded(f"Training run {run.pk} attempt {run.attempts} is no longer the running attempt.")


def run_heartbeat_touch(run_id: int) -> None:
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())


def run_ended(dataset_id: int) -> None:
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
            run_ended(moved.dataset_id)


def run_requeue_after_transient_error(run: TrainingRun) -> None:
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
        on_moved=lambda run: run_ended(run.dataset_id),
    )
