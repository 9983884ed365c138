"""Verifying the audit trail in a worker: request, dispatch, claim, walk with progress, record, sweep.

A verification walks every event and checkpoint (about ten seconds at a million
events), so the auditor's "Verify now" no longer walks inside the request:

1. `audit_verification_request` saves an AuditVerificationRun (queued) with its
   audit event, and hands it to Celery after the commit. While one is queued or
   running, asking again returns that one: two walks of the same trail at once
   would tell nothing more. A run may carry checkpoint documents the auditor
   kept outside Loupe (uploaded on the page, or sent to the API): it is always
   a new run, and the walk checks the trail against them too. The API asks
   the same way (governance/verification_run_apis.py).
2. The task (`audit_verification_execute`) claims the run with a conditional
   UPDATE (queued -> running, audited), so a redelivered message walks nothing twice;
   it walks with `audit_trail_verify`, writing the events walked so far and a
   heartbeat onto the run; then, in one transaction, the outcome goes onto the
   run and into the trail as audit.verified (what every auditor page shows).
3. The beat sweep (`audit_verification_runs_sweep`) sends queued runs the broker
   never got (it was down) again, and takes back a run whose worker stopped
   beating: queued again once, failed after that. A walk changes nothing but its
   own run, so running it again is always safe.

Every change of a run's status writes its event in the same transaction.
"""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from governance.audit import audit_record
from governance.checkpoint_signing import exported_checkpoint_parse
from governance.checkpoints import TrailVerification, audit_trail_verify, audit_verification_record
from governance.models import AuditVerificationRun
from workflow_site.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

REQUESTED_ACTION = "audit.verification_requested"
STARTED_ACTION = "audit.verification_started"
REQUEUED_ACTION = "audit.verification_requeued"
FAILED_ACTION = "audit.verification_failed"
OBJECT_TYPE = "auditverificationrun"
# A worker gets this many tries at a run (the first and one after a lost worker).
MAX_ATTEMPTS = 2
# Checkpoint documents one run is checked against, at most (the API's and the page's limit).
MAX_EXPORTED_CHECKPOINTS = 100
# A queued run this young is left to its own after-commit dispatch.
_DISPATCH_GRACE = timedelta(seconds=5)
Status = AuditVerificationRun.Status


def audit_verification_request(
    *, actor: AbstractBaseUser, exported_documents: list[dict[str, Any]] | None = None
) -> tuple[AuditVerificationRun, bool]:
    """A queued verification run for `actor` (created, or the one already queued or running): (run, created).

    Precondition: the caller checked that `actor` is an auditor. With `exported_documents`
    (checkpoint documents, already parsed once by the caller) a new run is always made.
    """
    with transaction.atomic():
        if not exported_documents:
            active = (
                AuditVerificationRun.objects.select_for_update()
                .filter(status__in=AuditVerificationRun.ACTIVE, exported_checkpoints=[])
                .order_by("requested_at")
                .first()
            )
            if active is not None:
                return active, False
        run = AuditVerificationRun.objects.create(
            requested_by=actor, requested_at=timezone.now(), exported_checkpoints=exported_documents or []
        )
        audit_record(
            actor=actor,
            action=REQUESTED_ACTION,
            object_type=OBJECT_TYPE,
            object_id=str(run.pk),
            after={"status": run.status, "exported_checkpoints": len(run.exported_checkpoints)},
        )
        transaction.on_commit(lambda: audit_verification_dispatch(run_id=run.pk))
    return run, True


def audit_verification_dispatch(*, run_id: int) -> bool:
    """Hand a queued run to the broker; False (it stays queued, for the sweep) when the broker is unreachable.

    Never walks in the caller's process instead: that is what this module exists to avoid.
    """
    from governance import tasks

    try:
        tasks.audit_verification_run_task.apply_async(
            args=[run_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
        )
    except Exception:  # kombu raises several kinds of connection errors; all mean "try later"
        logger.warning("Broker unreachable; audit verification %s stays queued for the sweep.", run_id, exc_info=True)
        return False
    AuditVerificationRun.objects.filter(pk=run_id, status=Status.QUEUED).update(dispatched_at=timezone.now())
    return True


def audit_verification_execute(*, run_id: int) -> AuditVerificationRun | None:
    """The task's body: claim the run, walk the trail, record the outcome. None when another took it.

    Precondition: outside a transaction (in a worker), so that the progress and the heartbeat
    are seen by the page while the walk goes on; inside one (eager tests) it works the same,
    only unseen until the end.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = AuditVerificationRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            events_checked=0,
        )
        if not claimed:
            return None
        started = audit_record(
            actor=None,
            actor_username="system",
            action=STARTED_ACTION,
            object_type=OBJECT_TYPE,
            object_id=str(run_id),
            before={"status": Status.QUEUED},
            after={"status": Status.RUNNING},
        )
        # The chain's length as the walk will find it (this event included), for the progress bar.
        AuditVerificationRun.objects.filter(pk=run_id).update(events_total=started.seq)
    run = AuditVerificationRun.objects.select_related("requested_by").get(pk=run_id)

    def touch() -> None:
        AuditVerificationRun.objects.filter(pk=run_id, status=Status.RUNNING).update(heartbeat_at=timezone.now())

    def progress(walked: int) -> None:
        AuditVerificationRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
            events_checked=walked, heartbeat_at=timezone.now()
        )

    try:
        exported = [exported_checkpoint_parse(document) for document in run.exported_checkpoints]
        with Heartbeat(touch=touch, name=f"audit verification {run_id}"):
            result = audit_trail_verify(exported=exported, progress=progress)
    except Exception as exc:
        logger.exception("Audit verification %s failed", run_id)
        return _fail(run_id=run_id, error="".join(traceback.format_exception_only(exc)).strip())
    return _finish(run=run, result=result)


def _finish(*, run: AuditVerificationRun, result: TrailVerification) -> AuditVerificationRun | None:
    """The outcome onto the run and into the trail (audit.verified), in one transaction."""
    with transaction.atomic():
        finished = AuditVerificationRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.DONE,
            finished_at=timezone.now(),
            events_checked=result.events_checked,
            result=verification_summary(result),
        )
        if not finished:  # the sweep took it back meanwhile: its next attempt records the outcome
            return None
        audit_verification_record(result=result, actor=run.requested_by)
    return AuditVerificationRun.objects.get(pk=run.pk)


def _fail(*, run_id: int, error: str) -> AuditVerificationRun | None:
    with transaction.atomic():
        failed = AuditVerificationRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
            status=Status.FAILED, finished_at=timezone.now(), error=error[:2000]
        )
        if not failed:
            return None
        audit_record(
            actor=None,
            actor_username="system",
            action=FAILED_ACTION,
            object_type=OBJECT_TYPE,
            object_id=str(run_id),
            before={"status": Status.RUNNING},
            after={"status": Status.FAILED, "error": error[:2000]},
        )
    return AuditVerificationRun.objects.get(pk=run_id)


def verification_summary(result: TrailVerification) -> dict[str, Any]:
    """What a run keeps of its walk (JSON): enough for the page to say what audit_verify said."""
    broken = result.chain_break
    return {
        "ok": result.ok,
        "events_checked": result.events_checked,
        "chain_break": {"seq": broken.seq, "reason": broken.reason} if broken else None,
        "problems": list(result.problems),
        "checkpoints_checked": result.checkpoints_checked,
        "exported_checked": result.exported_checked,
        "tombstones": result.tombstones,
    }


def audit_verification_runs_sweep() -> int:
    """Beat: resend queued runs the broker never got; take back runs whose worker stopped. Runs moved."""
    now = timezone.now()
    moved = 0
    for run_id in AuditVerificationRun.objects.filter(
        status=Status.QUEUED, requested_at__lt=now - _DISPATCH_GRACE
    ).values_list("pk", flat=True):
        moved += audit_verification_dispatch(run_id=run_id)
    stale = now - timedelta(seconds=settings.LOUPE_HEARTBEAT_STALE_S)
    for run_id, attempts in AuditVerificationRun.objects.filter(
        status=Status.RUNNING, heartbeat_at__lt=stale
    ).values_list("pk", "attempts"):
        if attempts >= MAX_ATTEMPTS:
            moved += _fail(run_id=run_id, error="its worker stopped (no heartbeat), twice") is not None
            continue
        with transaction.atomic():
            taken = AuditVerificationRun.objects.filter(
                pk=run_id, status=Status.RUNNING, heartbeat_at__lt=stale
            ).update(status=Status.QUEUED, dispatched_at=None)
            if taken:
                audit_record(
                    actor=None,
                    actor_username="system",
                    action=REQUEUED_ACTION,
                    object_type=OBJECT_TYPE,
                    object_id=str(run_id),
                    before={"status": Status.RUNNING},
                    after={"status": Status.QUEUED, "why": "its worker stopped (no heartbeat)"},
                )
                transaction.on_commit(lambda run_id=run_id: audit_verification_dispatch(run_id=run_id))
        moved += taken
    return moved
