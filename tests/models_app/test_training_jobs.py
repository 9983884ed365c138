"""Training runs as jobs a person can watch: triggers that coalesce, cancel, transient-error retries,
the schedule and the drift hook (issue 9, points 7 and 8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from annotations.models import GoldLabel
from governance.models import AuditEvent
from models_app import training
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun, TrainingTrigger
from models_app.services import (
    retraining_policy_check,
    training_run_cancel,
    training_run_request,
    training_runs_sweep,
    training_trigger_drift,
)
from models_app.training import training_run_claim, training_run_execute
from tests.conftest import login
from tests.helpers import review_next


def _request(dataset, user, reason="test", trigger=TrainingRun.Trigger.MANUAL):  # type: ignore[no-untyped-def]
    return training_run_request(dataset=dataset, trigger=trigger, requested_by=user, reason=reason, dispatch=False)


def _actions(run: TrainingRun) -> list[str]:
    events = AuditEvent.objects.filter(object_id=str(run.pk), object_type="training_run").order_by("seq")
    return list(events.values_list("action", flat=True))


def test_a_trigger_while_a_run_is_queued_is_folded_into_it_not_refused(trained_dataset, model_admin, model_admin2):
    first = _request(trained_dataset, model_admin, reason="by hand")
    second = _request(trained_dataset, model_admin2, reason="me too", trigger=TrainingRun.Trigger.POLICY)

    assert second.pk == first.pk
    assert TrainingRun.objects.filter(dataset=trained_dataset, status="queued").count() == 1
    kinds = list(TrainingTrigger.objects.filter(run=first).values_list("kind", "reason"))
    assert kinds == [("manual", "by hand"), ("policy", "me too")]
    assert _actions(first) == ["training.requested", "training.trigger_folded"]

    version = training_run_execute(run_id=first.pk)
    assert version is not None
    answered = TrainingTrigger.objects.filter(snapshot=version.snapshot).count()
    assert answered == 2  # the snapshot records both triggers it answers


def test_a_trigger_while_a_run_is_running_queues_the_next_run_behind_it(
    trained_dataset, model_admin, broker, django_capture_on_commit_callbacks
):
    running = _request(trained_dataset, model_admin)
    assert training_run_claim(run_id=running.pk)

    behind = _request(trained_dataset, model_admin, reason="labels keep coming")
    assert behind.pk != running.pk and behind.status == TrainingRun.Status.QUEUED
    assert (
        AuditEvent.objects.filter(action="training.requested", object_id=str(behind.pk)).get().after["behind_run"]
        == running.pk
    )
    assert training_run_claim(run_id=behind.pk) is False  # not while the first one runs
    assert TrainingRun.objects.get(pk=behind.pk).status == TrainingRun.Status.QUEUED

    # The first run ends (here: it fails); the one behind it goes to the broker and can be claimed.
    from models_app.training import training_run_fail

    broker.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        training_run_fail(run_id=running.pk, error="stopped for the test")
    assert [c.kwargs["args"] for c in broker.call_args_list] == [[behind.pk]]
    assert training_run_claim(run_id=behind.pk) is True


def test_the_policy_queues_a_run_behind_a_running_one_once_enough_labels_are_new(
    trained_dataset, model_admin, reviewer
):
    running = _request(trained_dataset, model_admin)
    assert training_run_claim(run_id=running.pk)
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(new_gold_labels=2)
    review_next(trained_dataset, reviewer)
    assert retraining_policy_check(dataset_id=trained_dataset.pk) is None  # one new label: not yet
    review_next(trained_dataset, reviewer)

    queued = retraining_policy_check(dataset_id=trained_dataset.pk)

    assert queued is not None and queued.status == "queued" and queued.trigger == "policy"
    assert retraining_policy_check(dataset_id=trained_dataset.pk) is None  # the queued run will answer


def test_cancelling_a_queued_run_ends_it_at_once(trained_dataset, model_admin, model_admin2):
    run = _request(trained_dataset, model_admin)
    cancelled = training_run_cancel(run_id=run.pk, user=model_admin2, reason="wrong data")
    assert cancelled.status == TrainingRun.Status.CANCELLED and cancelled.cancel_requested_by == model_admin2
    assert training_run_execute(run_id=run.pk) is None  # a late delivery trains nothing
    assert _actions(run)[-1] == "training.cancelled"
    with pytest.raises(ValidationError, match="already cancelled"):
        training_run_cancel(run_id=run.pk, user=model_admin, reason="again")


def test_a_running_run_stops_at_its_next_step_registers_nothing_and_leaves_no_artifact(
    trained_dataset, model_admin, model_admin2, monkeypatch
):
    run = _request(trained_dataset, model_admin)
    versions_before = ModelVersion.objects.filter(dataset=trained_dataset).count()
    artifacts_before = set(Path(settings.ARTIFACT_ROOT).rglob("*"))
    fit = training.model_fit

    def fit_then_someone_cancels(*args, **kwargs):  # type: ignore[no-untyped-def]
        model = fit(*args, **kwargs)
        stopping = training_run_cancel(run_id=run.pk, user=model_admin2, reason="not this one")
        assert stopping.status == TrainingRun.Status.RUNNING and stopping.is_cancelling
        return model

    monkeypatch.setattr(training, "model_fit", fit_then_someone_cancels)

    assert training_run_execute(run_id=run.pk) is None

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED and run.stage == "Cancelled"
    assert ModelVersion.objects.filter(dataset=trained_dataset).count() == versions_before
    assert set(Path(settings.ARTIFACT_ROOT).rglob("*")) == artifacts_before
    assert _actions(run)[-2:] == ["training.cancel_requested", "training.cancelled"]


def test_a_transient_database_error_puts_the_run_back_in_the_queue_for_a_retry_not_failed(
    trained_dataset, model_admin, monkeypatch
):
    run = _request(trained_dataset, model_admin)

    def database_went_away(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(training, "model_fit", database_went_away)
    with pytest.raises(OperationalError):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == (TrainingRun.Status.QUEUED, 1, "")
    assert "transient" in AuditEvent.objects.filter(action="training.requeued", object_id=str(run.pk)).get().reason
    monkeypatch.undo()
    assert training_run_execute(run_id=run.pk) is not None  # the retry trains it
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TrainingRun.Status.SUCCEEDED, 2)


def test_the_task_retries_only_database_errors():
    from models_app import tasks

    assert set(tasks.training_run_execute.autoretry_for) == {OperationalError, __import__("django").db.InterfaceError}


def test_the_schedule_retrains_when_its_hours_have_passed_and_a_label_is_new(trained_dataset, reviewer):
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(schedule_hours=6, new_gold_labels=1_000)
    fresh = review_next(trained_dataset, reviewer)
    last = TrainingRun.objects.filter(dataset=trained_dataset).order_by("-requested_at").first()
    now = timezone.now()

    TrainingRun.objects.filter(pk=last.pk).update(requested_at=now - timedelta(hours=5))
    GoldLabel.objects.filter(dataset=trained_dataset, origin="review").update(updated_at=now)
    training_runs_sweep(now=now)
    assert not TrainingRun.objects.filter(dataset=trained_dataset, status="queued").exists()  # too soon

    TrainingRun.objects.filter(pk=last.pk).update(requested_at=now - timedelta(hours=7))
    GoldLabel.objects.filter(dataset=trained_dataset).update(updated_at=now - timedelta(hours=8))
    training_runs_sweep(now=now)
    assert not TrainingRun.objects.filter(dataset=trained_dataset, status="queued").exists()  # nothing new

    GoldLabel.objects.filter(item_id=fresh.item_id).update(updated_at=now)
    training_runs_sweep(now=now)
    scheduled = TrainingRun.objects.get(dataset=trained_dataset, status="queued")
    assert scheduled.trigger == "schedule" and "every 6 h" in scheduled.reason


def test_a_drift_alarm_queues_a_retraining_and_never_a_promotion(trained_dataset):
    run = training_trigger_drift(dataset_id=trained_dataset.pk, reason="input drift on radius (PSI 0.31)")
    assert (run.status, run.trigger, run.requested_by) == ("queued", "drift", None)
    assert TrainingTrigger.objects.get(run=run).reason == "input drift on radius (PSI 0.31)"
    from governance.models import PromotionRequest

    assert not PromotionRequest.objects.filter(model_version__dataset=trained_dataset, status="pending").exists()


def test_the_run_page_offers_cancel_to_model_admins_and_shows_the_triggers(trained_dataset, model_admin, auditor):
    run = _request(trained_dataset, model_admin, reason="by hand")
    _request(trained_dataset, model_admin, reason="policy met", trigger=TrainingRun.Trigger.POLICY)
    url = reverse("models_app:run_detail", args=[run.pk])
    page = login(model_admin).get(url).content.decode()
    assert "Cancel this run" in page and "policy met" in page and "by hand" in page
    assert "Cancel this run" not in login(auditor).get(url).content.decode()

    response = login(model_admin).post(reverse("models_app:run_cancel", args=[run.pk]), {"reason": "mistake"})
    assert response.status_code == 302
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"
    assert login(auditor).post(reverse("models_app:run_cancel", args=[run.pk])).status_code == 403


def test_the_api_cancels_a_run(trained_dataset, model_admin):
    run = _request(trained_dataset, model_admin)
    response = login(model_admin).post(
        f"/api/training-runs/{run.pk}/cancel/", {"reason": "mistake"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = login(model_admin).post(f"/api/training-runs/{run.pk}/cancel/", {}, content_type="application/json")
    assert again.status_code == 400 and "already cancelled" in again.content.decode()
