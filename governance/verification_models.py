"""A request to verify the audit trail, run by a worker (governance/verification_runs.py).

Verifying walks every event and checkpoint: about ten seconds at a million
events, longer than a page request should wait and close to a web worker's
timeout. So "Verify now" saves one of these and a Celery task does the walk,
writing its progress here for the page to poll. The outcome is recorded twice:
here, for the page that asked, and as the audit.verified event every auditor
page reads (audit_integrity_status).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditVerificationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Verifying"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+", help_text="null: the system."
    )
    requested_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, help_text="Last handed to the broker (the sweep sends it again).")
    started_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True, help_text="Moved by the worker while it walks: a dead one stops.")
    finished_at = models.DateTimeField(null=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Workers that took it (a lost one is retried).")
    events_total = models.PositiveBigIntegerField(default=0, help_text="The chain's length when the walk began.")
    events_checked = models.PositiveBigIntegerField(default=0, help_text="Progress: events walked so far.")
    exported_checkpoints = models.JSONField(
        default=list, blank=True, help_text="Checkpoint documents kept outside Loupe, to verify against (the API's)."
    )
    result = models.JSONField(null=True, blank=True, help_text="What the walk found (null until done).")
    error = models.TextField(blank=True, help_text="Why it failed (a worker error, not a broken trail).")

    class Meta:
        indexes = [
            # the sweep and "is one already running?": the few active runs
            models.Index(
                fields=["status", "requested_at"],
                name="verification_active",
                condition=Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"audit verification #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
