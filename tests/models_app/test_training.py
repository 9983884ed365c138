"""Training runs: snapshot, holdout sequestration, idempotent claim, failure, evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from annotations.models import GoldLabel, ImportBatch, Item
from governance.models import AuditEvent
from models_app.ml.artifacts import ArtifactIntegrityError
from models_app.models import DatasetSnapshot, Evaluation, ModelVersion, SnapshotLabel, TrainingRun
from models_app.prediction import model_load
from models_app.services import training_run_request
from models_app.training import training_run_claim, training_run_execute
from tests.conftest import synthetic_rows


def _request(dataset, user):  # type: ignore[no-untyped-def]
    return training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=user, reason="test", dispatch=False
    )


def test_candidate_is_evaluated_against_the_champion_on_the_same_holdout(trained_dataset, model_admin):
    run = _request(trained_dataset, model_admin)
    version = training_run_execute(run_id=run.pk)
    assert version is not None and version.version == 2 and version.stage == ModelVersion.Stage.CANDIDATE
    evaluations = {e.role: e for e in Evaluation.objects.filter(training_run=run)}
    assert set(evaluations) == {"candidate", "champion"}
    assert evaluations["champion"].model_version.version == 1
    assert evaluations["candidate"].holdout_hash == evaluations["champion"].holdout_hash
    assert evaluations["candidate"].holdout_size == 20


def test_snapshot_freezes_exact_gold_labels_and_never_the_holdout(trained_dataset, model_admin):
    run = _request(trained_dataset, model_admin)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    snapshot = run.snapshot
    frozen = set(SnapshotLabel.objects.filter(snapshot=snapshot).values_list("item_id", flat=True))
    holdout = set(
        Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.HOLDOUT).values_list("pk", flat=True)
    )
    golds = set(
        GoldLabel.objects.filter(dataset=trained_dataset).exclude(item_id__in=holdout).values_list("item_id", flat=True)
    )
    assert frozen == golds and not frozen & holdout
    assert snapshot.label_count == len(frozen) == 20
    assert len(snapshot.content_hash) == 64


def test_same_labels_give_the_same_snapshot_hash(trained_dataset, model_admin):
    first = _request(trained_dataset, model_admin)
    training_run_execute(run_id=first.pk)
    second = _request(trained_dataset, model_admin)
    training_run_execute(run_id=second.pk)
    hashes = list(DatasetSnapshot.objects.filter(runs__in=[first, second]).values_list("content_hash", flat=True))
    assert len(hashes) == 2 and hashes[0] == hashes[1]


def test_a_run_is_claimed_only_once(trained_dataset, model_admin):
    run = _request(trained_dataset, model_admin)
    assert training_run_claim(run_id=run.pk) is True
    assert training_run_claim(run_id=run.pk) is False
    assert training_run_execute(run_id=run.pk) is None  # already running elsewhere: nothing trains
    assert AuditEvent.objects.filter(action="training.started", object_id=str(run.pk)).count() == 1


def test_a_failing_run_ends_failed_with_its_reason_and_an_audit_event(dataset, model_admin, import_rows):
    rows = [r for r in synthetic_rows(10) if r["label"] == "benign"]  # one class only: cannot train
    import_rows(rows)
    artifacts_before = set(Path(settings.ARTIFACT_ROOT).rglob("*.skops"))
    run = _request(dataset, model_admin)
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "at least two classes" in run.error
    assert AuditEvent.objects.filter(action="training.failed", object_id=str(run.pk)).exists()
    assert not ModelVersion.objects.filter(dataset=dataset).exists()
    assert set(Path(settings.ARTIFACT_ROOT).rglob("*.skops")) == artifacts_before


def test_a_tampered_champion_artifact_is_refused(trained_dataset):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    path = Path(settings.ARTIFACT_ROOT) / champion.artifact_path
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactIntegrityError):
        model_load(champion)


def test_every_prediction_points_to_the_version_that_made_it(trained_dataset):
    from models_app.models import Prediction

    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    for item in Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN):
        prediction = Prediction.objects.get(pk=item.prediction_id)
        assert prediction.model_version_id == champion.pk
        assert item.predicted_label_id == prediction.label_id
        assert item.queue_priority == pytest.approx(prediction.confidence)


def test_import_after_a_champion_exists_predicts_the_new_items(
    trained_dataset, import_rows, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = import_rows(synthetic_rows(4, start=900, labelled=False), name="late.csv")
    assert not Item.objects.filter(batch=batch, prediction_id__isnull=True).exists()
    assert batch.purpose == ImportBatch.Purpose.REVIEW


def test_a_champion_that_cannot_be_loaded_does_not_stop_the_candidate(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    path = Path(settings.ARTIFACT_ROOT) / champion.artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")
    run = _request(trained_dataset, model_admin)
    version = training_run_execute(run_id=run.pk)
    assert version is not None and version.stage == ModelVersion.Stage.CANDIDATE
    assert set(Evaluation.objects.filter(training_run=run).values_list("role", flat=True)) == {"candidate"}
