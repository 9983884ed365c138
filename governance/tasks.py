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


# acks_late (the site default): a worker lost mid-walk leaves the message, and the claim (queued -> running)
# makes a redelivery that finds the run taken walk nothing; the sweep takes back a run whose worker stopped.
@shared_task(name="governance.tasks.audit_verification_run_task")
def audit_verification_run_task(run_id: int) -> bool:
    """Walk the audit trail for one requested verification (governance/verification_runs.py)."""
    from governance.verification_runs import audit_verification_execute
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:audit_verification:{run_id}")
    return audit_verification_execute(run_id=run_id) is not None


@shared_task(name="governance.tasks.audit_verification_runs_sweep")
def audit_verification_runs_sweep() -> int:
    """Beat: resend verifications the broker never got; take back those whose worker stopped."""
    from governance.verification_runs import audit_verification_runs_sweep

    return audit_verification_runs_sweep()
