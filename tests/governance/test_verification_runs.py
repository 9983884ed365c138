"""Verifying the audit trail in a worker (governance/verification_runs.py): request, walk, outcome, sweep."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance import verification_runs
from governance.audit import audit_record
from governance.models import AuditEvent, AuditVerificationRun
from governance.verification_runs import (
    FAILED_ACTION,
    REQUESTED_ACTION,
    REQUEUED_ACTION,
    STARTED_ACTION,
    audit_verification_execute,
    audit_verification_request,
    audit_verification_runs_sweep,
)
from tests.conftest import login

Status = AuditVerificationRun.Status


@pytest.fixture
def trail(db) -> int:
    """A few events; the chain's length."""
    with transaction.atomic():
        for n in range(5):
            audit_record(actor=None, actor_username="system", action="test.event", after={"n": n})
    return AuditEvent.objects.count()


def _actions(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_asking_queues_one_run_with_its_event_and_asking_again_meanwhile_returns_the_same_run(
    trail, auditor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as dispatched:
        run, created = audit_verification_request(actor=auditor)
        again, created_again = audit_verification_request(actor=auditor)

    assert created and not created_again and again.pk == run.pk
    assert run.status == Status.QUEUED and run.requested_by == auditor
    assert _actions(REQUESTED_ACTION) == 1  # the second ask changed nothing, so it recorded nothing
    assert len(dispatched) == 1


def test_the_worker_walks_the_trail_records_the_outcome_and_a_redelivered_task_walks_nothing(
    trail, auditor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the eager task runs after the commit
        run, _ = audit_verification_request(actor=auditor)

    run.refresh_from_db()
    assert run.status == Status.DONE and run.attempts == 1
    # The chain at the walk's start: the trail, the request's and the claim's events (the outcome's comes after).
    assert run.events_total == trail + 2 == run.events_checked
    assert run.result["ok"] is True and run.result["chain_break"] is None
    assert _actions(STARTED_ACTION) == 1
    verified = AuditEvent.objects.get(action="audit.verified")
    assert verified.actor_id == auditor.pk and verified.after["events"] == trail + 2

    assert audit_verification_execute(run_id=run.pk) is None  # taken already: the claim refuses
    assert _actions("audit.verified") == 1


def test_progress_is_written_onto_the_run_as_the_walk_goes(trail, auditor, monkeypatch):
    run, _ = audit_verification_request(actor=auditor)
    seen: list[int] = []
    real_verify = verification_runs.audit_trail_verify

    def verify(**kwargs):  # type: ignore[no-untyped-def]
        kwargs["progress"](3)  # what chain_walk calls every batch
        seen.append(AuditVerificationRun.objects.get(pk=run.pk).events_checked)
        return real_verify(**kwargs)

    monkeypatch.setattr(verification_runs, "audit_trail_verify", verify)
    audit_verification_execute(run_id=run.pk)

    assert seen == [3]


def test_a_broken_trail_is_a_finished_run_that_names_the_event(trail, auditor, django_capture_on_commit_callbacks):
    from tests.governance.test_audit import _tamper

    target = AuditEvent.objects.order_by("seq")[2]
    _tamper("UPDATE governance_auditevent SET reason = %s WHERE seq = %s", ["forged", target.seq])

    with django_capture_on_commit_callbacks(execute=True):
        run, _ = audit_verification_request(actor=auditor)

    run.refresh_from_db()
    assert run.status == Status.DONE and run.result["ok"] is False
    assert run.result["chain_break"]["seq"] == target.seq


def test_a_walk_that_crashes_fails_the_run_with_its_event_and_the_page_offers_to_try_again(
    trail, auditor, monkeypatch, django_capture_on_commit_callbacks
):
    def crash(**kwargs):  # type: ignore[no-untyped-def]
        raise OSError("the database went away")

    monkeypatch.setattr(verification_runs, "audit_trail_verify", crash)
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = audit_verification_request(actor=auditor)

    run.refresh_from_db()
    assert run.status == Status.FAILED and "the database went away" in run.error
    assert _actions(FAILED_ACTION) == 1 and _actions("audit.verified") == 0
    page = login(auditor).get(reverse("governance:audit_verify_run", args=[run.pk]))
    assert b"could not finish" in page.content and b"Verify the hash chain and checkpoints" in page.content


def test_with_the_broker_down_the_run_stays_queued_and_the_sweep_sends_it_later(
    trail, auditor, django_capture_on_commit_callbacks
):
    from governance import tasks

    with (
        mock.patch.object(tasks.audit_verification_run_task, "apply_async", side_effect=ConnectionError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run, _ = audit_verification_request(actor=auditor)  # the request itself succeeds
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.dispatched_at is None

    AuditVerificationRun.objects.filter(pk=run.pk).update(requested_at=timezone.now() - timedelta(minutes=1))
    assert audit_verification_runs_sweep() == 1  # the broker is back: sent, and (eager) walked

    run.refresh_from_db()
    assert run.status == Status.DONE and run.result["ok"] is True


def test_a_run_whose_worker_stopped_is_queued_again_once_then_failed(
    trail, auditor, settings, django_capture_on_commit_callbacks
):
    run, _ = audit_verification_request(actor=auditor)
    stale = timezone.now() - timedelta(seconds=settings.LOUPE_HEARTBEAT_STALE_S + 1)
    AuditVerificationRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, heartbeat_at=stale, attempts=1)

    with django_capture_on_commit_callbacks() as dispatched:
        assert audit_verification_runs_sweep() == 1
    run.refresh_from_db()
    assert run.status == Status.QUEUED and _actions(REQUEUED_ACTION) == 1 and len(dispatched) == 1

    AuditVerificationRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, heartbeat_at=stale, attempts=2)
    assert audit_verification_runs_sweep() == 1
    run.refresh_from_db()
    assert run.status == Status.FAILED and "stopped" in run.error and _actions(FAILED_ACTION) == 1


def test_the_page_shows_a_running_walks_progress_and_polls_until_it_is_done(trail, auditor):
    run, _ = audit_verification_request(actor=auditor)
    AuditVerificationRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, events_total=60, events_checked=20)
    client = login(auditor)

    page = client.get(reverse("governance:audit_verify_run", args=[run.pk]), HTTP_HX_REQUEST="true")

    html = page.content.decode()
    assert "20 of 60 events walked" in html
    assert '<progress class="import-bar" max="60" value="20"' in html
    assert 'hx-trigger="every 1s"' in html and f'hx-get="/governance/audit/verify/{run.pk}/"' in html
    assert 'id="audit-integrity"' not in html  # the integrity line is swapped only with the outcome


def test_the_api_asks_for_a_run_and_follows_it_to_the_outcome(trail, auditor, django_capture_on_commit_callbacks):
    client = login(auditor)  # the sign-in is an event too
    before = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):  # the (eager) worker walks after the commit
        asked = client.post("/api/audit/verification-runs/", {}, content_type="application/json")

    assert asked.status_code == 202
    body = asked.json()
    assert body["status"] == "queued" and body["requested_by"] == auditor.username
    assert body["status_url"] == f"/api/audit/verification-runs/{body['id']}/"
    done = client.get(body["status_url"]).json()
    assert done["status"] == "done" and done["events_checked"] == done["events_total"] == before + 2
    assert done["result"]["ok"] is True and done["result"]["chain_break"] is None
    assert _actions("audit.verified") == 1


def test_the_walk_itself_reports_its_progress_batch_by_batch(trail, monkeypatch):
    """What the run's progress bar is fed: chain_walk calls `progress` as it goes (here every 2 events)."""
    from governance import chain_walk
    from governance.checkpoints import audit_trail_verify

    monkeypatch.setattr(chain_walk, "BATCH", 2)
    seen: list[int] = []

    result = audit_trail_verify(progress=seen.append)

    assert result.ok and result.events_checked == trail
    assert seen and seen == sorted(seen) and seen[0] == 2 and seen[-1] <= trail
    assert len(seen) >= trail // 2
