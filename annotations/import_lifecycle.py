"""An import batch's life outside its happy path: dispatch, claims, heartbeats, failure, clean-up, the sweep.

annotations/imports.py runs an import (store, validate, stage, publish); this
module holds what keeps a batch honest around it. Every state change is a
conditional UPDATE (`batch_transition`) with its audit event in the same
transaction, so of two callers (a redelivered task, the sweep, the worker)
exactly one moves a batch, and a worker the sweep presumed lost cannot write
after the batch was taken back (`Superseded`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotations.models import ImportBatch, ImportStagedRow
from governance.audit import audit_record
from workflow_site.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

# Staged rows deleted per transaction after publishing (or a failure).
_DELETE_CHUNK_ROWS = 5000
# A queued batch this young is left to its own after-commit dispatch.
_DISPATCH_GRACE = timedelta(seconds=5)


class Superseded(Exception):
    """This attempt no longer owns the batch: the sweep presumed its worker lost and took it back."""


def upload_path(batch: ImportBatch) -> Path:
    return Path(settings.LOUPE_UPLOAD_DIR) / batch.stored_file


def import_batch_dispatch(*, batch_id: int) -> bool:
    """Hand a queued batch to the broker. False (and the batch stays queued) if the broker is unreachable.

    Never falls back to importing in the caller's process: that is what kept
    requests waiting. The sweep sends it again.
    """
    from annotations import tasks

    try:
        tasks.import_batch_process.apply_async(
            args=[batch_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
        )
    except Exception:  # kombu raises several kinds of connection errors; all mean "try later"
        logger.warning("Broker unreachable; import batch %s stays queued for the next sweep.", batch_id, exc_info=True)
        return False
    ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.QUEUED).update(dispatched_at=timezone.now())
    return True


# --- Transitions ------------------------------------------------------------------------------------------------


def batch_transition(
    *,
    batch_id: int,
    from_statuses: Iterable[str],
    action: str,
    after: dict[str, Any],
    actor: AbstractBaseUser | None = None,
    uploader_acts: bool = False,
    reason: str = "",
    only_if: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    **changes: Any,
) -> ImportBatch | None:
    """Move a batch out of one of `from_statuses` with a conditional UPDATE and audit it in the same transaction.

    The UPDATE ... WHERE status IN (...) (and `only_if`) is the claim: of two
    callers (a redelivered task, the sweep and the worker) exactly one moves the
    batch. Joins the caller's transaction when there is one. Returns the moved
    batch, or None when it was not in such a state.
    """
    from_statuses = list(from_statuses)
    with transaction.atomic():
        moved = ImportBatch.objects.filter(pk=batch_id, status__in=from_statuses, **(only_if or {})).update(**changes)
        if not moved:
            return None
        batch = ImportBatch.objects.select_related("dataset", "uploaded_by").get(pk=batch_id)
        audit_record(
            actor=batch.uploaded_by if uploader_acts else actor,
            action=action,
            obj=batch,
            object_type="import_batch",
            dataset_id=batch.dataset_id,
            before={"status": from_statuses[0] if len(from_statuses) == 1 else "active", **(before or {})},
            after=after,
            reason=reason,
        )
    return batch


def import_batch_claim(*, batch_id: int) -> ImportBatch | None:
    """queued → validating, once: None if another delivery already claimed it (or it is gone)."""
    now = timezone.now()
    return batch_transition(
        batch_id=batch_id,
        from_statuses=[ImportBatch.Status.QUEUED],
        action="import.started",
        after={"status": "validating"},
        status=ImportBatch.Status.VALIDATING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        rows_done=0,
        stage="Checking every row",
    )


def batch_progress(batch: ImportBatch, **changes: Any) -> None:
    """Record progress (and a heartbeat) if this attempt still owns the batch; else raise Superseded."""
    owned = ImportBatch.objects.filter(pk=batch.pk, status__in=ImportBatch.ACTIVE, attempts=batch.attempts)
    if not owned.update(heartbeat_at=timezone.now(), **changes):
        raise Superseded(f"Import batch {batch.pk} attempt {batch.attempts} was taken back by the sweep.")


def batch_heartbeat(batch: ImportBatch) -> Heartbeat:
    """Touches the batch's heartbeat from a thread while validation runs (while this attempt owns it)."""

    def touch() -> None:
        ImportBatch.objects.filter(pk=batch.pk, status__in=ImportBatch.ACTIVE, attempts=batch.attempts).update(
            heartbeat_at=timezone.now()
        )

    return Heartbeat(touch=touch, name=f"import batch {batch.pk}")


def import_batch_fail(*, batch: ImportBatch, error: str) -> ImportBatch | None:
    """In a worker's hands → failed, with the reason; its staged rows and stored file are removed."""
    failed = batch_transition(
        batch_id=batch.pk,
        from_statuses=ImportBatch.ACTIVE,
        only_if={"attempts": batch.attempts},
        action="import.failed",
        after={"status": "failed", "error": error[:500]},
        status=ImportBatch.Status.FAILED,
        stage="Failed",
        error=error[:2000],
        finished_at=timezone.now(),
    )
    if failed is not None:
        batch_cleanup(failed)
    return failed


def staged_rows_delete(batch_id: int) -> int:
    """Delete a batch's staged rows: one statement on PostgreSQL (the staging table is unlogged, so
    this writes no WAL), _DELETE_CHUNK_ROWS per short transaction on SQLite (each holds the write lock)."""
    if connection.vendor == "postgresql":
        return ImportStagedRow.objects.filter(batch_id=batch_id).delete()[0]  # one DELETE (nothing cascades)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                ImportStagedRow.objects.filter(batch_id=batch_id)
                .order_by("line")
                .values_list("pk", flat=True)[:_DELETE_CHUNK_ROWS]
            )
            if not ids:
                return deleted
            deleted += ImportStagedRow.objects.filter(pk__in=ids).delete()[0]


def batch_cleanup(batch: ImportBatch) -> None:
    """Remove a finished batch's staged rows and stored upload (its sha256 and size stay on the batch).

    Does nothing to a batch that is not finished: a lost attempt must not remove
    what the attempt that replaced it staged, nor the file it reads.
    """
    current = ImportBatch.objects.filter(pk=batch.pk).values_list("status", "stored_file").first()
    if current is None or current[0] not in ImportBatch.FINISHED:
        return
    staged_rows_delete(batch.pk)
    if current[1]:
        (Path(settings.LOUPE_UPLOAD_DIR) / current[1]).unlink(missing_ok=True)
        ImportBatch.objects.filter(pk=batch.pk).update(stored_file="")


# --- The sweep ----------------------------------------------------------------------------------------------


def import_batch_requeue_lost(*, batch_id: int, lost_at: datetime | None, max_attempts: int) -> ImportBatch | None:
    """In a worker's hands → queued (another attempt) or → failed (attempts used up), for a batch whose worker stopped.

    The conditional UPDATE also checks the heartbeat has not moved since the
    sweep read it, so a worker that was only slow keeps its batch. The lost
    attempt's staged rows are removed; the stored upload is kept for a retry.
    """
    batch = ImportBatch.objects.filter(pk=batch_id, status__in=ImportBatch.ACTIVE).first()
    if batch is None:
        return None
    when = lost_at.isoformat() if lost_at else "never"
    reason = f"the worker stopped sending heartbeats (last at {when}) during attempt {batch.attempts} of {max_attempts}"
    lost: dict[str, Any] = {
        "batch_id": batch_id,
        "from_statuses": [batch.status],
        "only_if": {"heartbeat_at": lost_at, "attempts": batch.attempts},
        "before": {"status": batch.status, "attempt": batch.attempts, "rows_done": batch.rows_done},
        "reason": reason,
    }
    if batch.attempts < max_attempts and batch.stored_file:
        moved = batch_transition(
            **lost,
            action="import.requeued",
            after={"status": "queued", "attempt": batch.attempts + 1},
            status=ImportBatch.Status.QUEUED,
            rows_done=0,
            dispatched_at=None,
            stage=f"Queued again after attempt {batch.attempts}: the worker stopped",
        )
        if moved is not None:
            staged_rows_delete(batch_id)
        return moved
    times = "time" if batch.attempts == 1 else "times"
    error = f"The worker stopped while importing {batch.attempts} {times}; not retried. Upload the file again."
    failed = batch_transition(
        **lost,
        action="import.failed",
        after={"status": "failed", "error": error},
        status=ImportBatch.Status.FAILED,
        stage="Failed",
        error=error,
        finished_at=timezone.now(),
    )
    if failed is not None:
        batch_cleanup(failed)
    return failed


def import_batches_sweep(*, now: datetime | None = None) -> int:
    """The beat sweep for imports. Returns how many queued batches were handed to the broker.

    - send queued batches nobody picked up (saved while the broker was down, or
      a message lost);
    - queue again (or, attempts used up, fail) batches whose worker stopped
      sending heartbeats, removing their staged rows, and send the re-queued ones;
    - remove staged rows and stored files that a crash left behind a finished batch.
    """
    now = now or timezone.now()
    redispatch_before = now - timedelta(seconds=settings.LOUPE_REDISPATCH_AFTER_S)
    waiting = ImportBatch.objects.filter(status=ImportBatch.Status.QUEUED, uploaded_at__lt=now - _DISPATCH_GRACE)
    waiting = waiting.filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=redispatch_before))
    sent = sum(import_batch_dispatch(batch_id=pk) for pk in waiting.values_list("pk", flat=True))

    stale_before = now - timedelta(seconds=settings.LOUPE_HEARTBEAT_STALE_S)
    lost = ImportBatch.objects.filter(status__in=ImportBatch.ACTIVE).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    )
    for pk, heartbeat_at in lost.values_list("pk", "heartbeat_at"):
        batch = import_batch_requeue_lost(
            batch_id=pk, lost_at=heartbeat_at, max_attempts=settings.LOUPE_IMPORT_MAX_ATTEMPTS
        )
        if batch is not None and batch.status == ImportBatch.Status.QUEUED:
            logger.warning("Import batch %s: the worker stopped; queued again (attempt %s).", pk, batch.attempts + 1)
            sent += import_batch_dispatch(batch_id=pk)
        elif batch is not None:
            logger.warning("Import batch %s: the worker stopped %s times; failed.", pk, batch.attempts)

    # A crash between a batch's last transaction and its clean-up; looked for among recent batches only.
    recent = ImportBatch.objects.filter(status__in=ImportBatch.FINISHED, finished_at__gte=now - timedelta(days=1))
    leftovers = recent.filter(Q(stored_file__gt="") | Exists(ImportStagedRow.objects.filter(batch_id=OuterRef("pk"))))
    for batch in leftovers.only("pk", "status", "stored_file"):
        batch_cleanup(batch)
    return sent
