"""Governance's Celery tasks."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="governance.tasks.audit_checkpoint_task")
def audit_checkpoint_task() -> int | None:
    """Beat: sign a checkpoint of the audit trail when something happened since the last one (its tree size)."""
    from governance.checkpoints import audit_checkpoint_create

    checkpoint = audit_checkpoint_create(only_if_new=True)
    return checkpoint.tree_size if checkpoint is not None else None


@shared_task(name="governance.tasks.retention_apply_task")
def retention_apply_task() -> int:
    """Beat: tombstone expired item data and audit payloads (governance/retention.py); the batches written."""
    from governance.retention import retention_apply

    return len(retention_apply())
