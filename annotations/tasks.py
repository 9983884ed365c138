"""Celery tasks: thin wrappers that take primary keys and call the service of the same name."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="annotations.tasks.import_batch_process", acks_late=True)
def import_batch_process(batch_id: int) -> None:
    from annotations.imports import import_batch_process
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:import_batch_process:{batch_id}")
    import_batch_process(batch_id=batch_id)


@shared_task(name="annotations.tasks.import_batches_sweep")
def import_batches_sweep() -> int:
    from annotations.import_lifecycle import import_batches_sweep

    return import_batches_sweep()


@shared_task(name="annotations.tasks.item_counts_fold")
def item_counts_fold() -> int:
    """Fold each dataset's counter rows into one per key, so reading them stays a few rows."""
    from annotations.counters import counts_fold_all

    return counts_fold_all()


@shared_task(name="annotations.tasks.queue_priorities_recompute", acks_late=True)
def queue_priorities_recompute(dataset_id: int) -> int:
    """Reorder a dataset's open items under its (new) queue strategy."""
    from annotations.models import Dataset
    from annotations.workbench import queue_priorities_recompute

    try:
        return queue_priorities_recompute(dataset_id=dataset_id)
    except Dataset.DoesNotExist:
        return 0
