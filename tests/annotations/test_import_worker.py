"""Imports run in a worker on a stored upload (issue 6, defect 3).

The request stores the file and queues a batch; the task validates, stages in
short transactions and publishes in one; a lost worker is taken back by the
sweep; a task delivered twice imports once; a clash with an import published
meanwhile is a rejection with a report, never a server error.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from annotations import imports
from annotations.import_lifecycle import Superseded, import_batch_claim, import_batches_sweep, upload_path
from annotations.imports import import_batch_process, import_batch_upload
from annotations.models import Dataset, GoldLabel, ImportBatch, ImportStagedRow, Item
from governance.audit_chain import verify_chain
from governance.models import AuditEvent
from tests.conftest import csv_bytes, login, synthetic_rows


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


def _queue(dataset: Dataset, user, rows: list[dict], name: str = "rows.csv") -> ImportBatch:  # type: ignore[no-untyped-def]
    """A stored upload, queued and not sent (the test runs the task itself)."""
    return import_batch_upload(
        dataset=dataset, user=user, file_name=name, chunks=[csv_bytes(rows)], purpose="review", dispatch=False
    )


def _actions(batch: ImportBatch) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="import_batch", object_id=str(batch.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_an_upload_returns_at_once_with_a_queued_batch_and_the_task_does_the_import(dataset, model_admin, settings):
    data = csv_bytes(synthetic_rows(6))
    client = login(model_admin)

    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = client.post(
            reverse("annotations:import", args=[dataset.pk]),
            {"file": SimpleUploadedFile("six.csv", data, content_type="text/csv"), "purpose": "review"},
        )

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])
    assert (batch.status, batch.file_sha256, batch.file_size) == ("queued", hashlib.sha256(data).hexdigest(), len(data))
    assert upload_path(batch).read_bytes() == data
    assert not Item.objects.exists()
    assert _actions(batch) == ["import.queued"]
    page = client.get(response["Location"]).content.decode()
    assert "Waiting for a worker" in page and 'hx-trigger="every 1s"' in page

    for callback in callbacks:  # the commit: the task is sent (and, eagerly, runs)
        callback()

    batch.refresh_from_db()
    assert (batch.status, batch.rows_imported, batch.rows_done, batch.stored_file) == ("imported", 6, 6, "")
    assert Item.objects.filter(batch=batch).count() == 6
    assert GoldLabel.objects.filter(item__batch=batch).count() == 6
    assert not ImportStagedRow.objects.exists()
    assert not any(Path(settings.LOUPE_UPLOAD_DIR).iterdir()), "the stored upload is deleted once imported"
    assert _actions(batch) == ["import.queued", "import.started", "import.completed"]
    page = client.get(response["Location"]).content.decode()
    assert "every 1s" not in page, "the page stops polling once the batch is finished"


def test_the_batch_page_partial_shows_a_progress_bar_while_rows_are_staged(dataset, model_admin):
    batch = _queue(dataset, model_admin, synthetic_rows(4))
    ImportBatch.objects.filter(pk=batch.pk).update(status="staging", rows_total=200_000, rows_done=45_000)

    response = login(model_admin).get(
        reverse("annotations:batch_detail", args=[dataset.pk, batch.pk]), HTTP_HX_REQUEST="true"
    )

    page = response.content.decode()
    assert page.lstrip().startswith('<section id="import-status"')
    assert '<progress class="import-bar" max="200000" value="45000"' in page
    assert "45000 of 200000 rows" in page
    assert "style=" not in page


def test_a_bad_file_ends_rejected_with_its_row_level_report_and_stages_nothing(dataset, model_admin):
    data = b"external_id,radius,texture,lobes\nb1,10,15,3\nb2,big,15,3\n"
    batch = import_batch_upload(
        dataset=dataset, user=model_admin, file_name="bad.csv", chunks=[data], purpose="review", dispatch=False
    )

    outcome = import_batch_process(batch_id=batch.pk)

    batch.refresh_from_db()
    assert outcome.batch == batch and batch.status == ImportBatch.Status.REJECTED
    assert batch.report["errors"] == [{"line": 3, "column": "radius", "value": "big", "reason": "Not a number."}]
    assert (batch.rows_total, batch.rows_rejected, batch.stored_file) == (2, 1, "")
    assert not Item.objects.exists() and not ImportStagedRow.objects.exists()
    assert _actions(batch) == ["import.queued", "import.started", "import.rejected"]


def test_a_task_delivered_twice_imports_once(dataset, model_admin):
    batch = _queue(dataset, model_admin, synthetic_rows(5))

    first = import_batch_process(batch_id=batch.pk)
    second = import_batch_process(batch_id=batch.pk)

    assert first is not None and first.batch.status == ImportBatch.Status.IMPORTED
    assert second is None
    assert Item.objects.count() == 5
    assert _actions(batch) == ["import.queued", "import.started", "import.completed"]


def test_an_import_published_meanwhile_with_the_same_ids_rejects_the_second_with_a_report(
    dataset, model_admin, monkeypatch
):
    first = _queue(dataset, model_admin, synthetic_rows(4, start=0), name="first.csv")
    second = _queue(dataset, model_admin, synthetic_rows(3, start=2), name="second.csv")  # t00002, t00003 clash
    check_and_stage = imports._check_and_stage

    def stage_then_let_the_other_publish(batch: ImportBatch):  # type: ignore[no-untyped-def]
        outcome = check_and_stage(batch)
        if batch.pk == second.pk:  # checked (no clash yet) and staged; now `first` publishes
            assert import_batch_process(batch_id=first.pk).batch.status == ImportBatch.Status.IMPORTED
        return outcome

    monkeypatch.setattr(imports, "_check_and_stage", stage_then_let_the_other_publish)

    outcome = import_batch_process(batch_id=second.pk)

    second.refresh_from_db()
    assert second.status == ImportBatch.Status.REJECTED
    assert outcome.result is not None
    assert second.report["errors"] == [
        {"line": line, "column": "external_id", "value": external_id, "reason": reason}
        for line, external_id in [(2, "t00002"), (3, "t00003")]
        for reason in ["Id already exists in this dataset (imported from first.csv)."]
    ]
    assert (second.rows_rejected, second.rows_imported) == (2, 0)
    assert set(Item.objects.values_list("batch", flat=True)) == {first.pk}
    assert Item.objects.count() == 4
    assert not ImportStagedRow.objects.exists()
    assert _actions(second)[-1] == "import.rejected"


def _stage_and_lose_the_worker(dataset: Dataset, user, rows: int) -> ImportBatch:  # type: ignore[no-untyped-def]
    """A batch whose worker staged its rows and died: status staging, staged rows left, a stale heartbeat."""
    batch = _queue(dataset, user, synthetic_rows(rows))
    claimed = import_batch_claim(batch_id=batch.pk)
    imports._check_and_stage(claimed)
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert ImportStagedRow.objects.filter(batch=batch).count() == rows
    return batch


def test_the_sweep_queues_again_a_batch_whose_worker_died_and_it_then_imports_once(dataset, model_admin, settings):
    settings.LOUPE_IMPORT_MAX_ATTEMPTS = 2
    batch = _stage_and_lose_the_worker(dataset, model_admin, 7)

    with mock.patch("annotations.tasks.import_batch_process.apply_async") as apply_async:
        sent = import_batches_sweep()

    batch.refresh_from_db()
    assert sent == 1 and apply_async.call_args.kwargs["args"] == [batch.pk]
    assert (batch.status, batch.attempts, batch.rows_done) == ("queued", 1, 0)
    assert "the worker stopped" in batch.stage
    assert not ImportStagedRow.objects.exists(), "the lost attempt's staged rows are removed"
    assert upload_path(batch).exists(), "the stored upload is kept for the next attempt"
    event = AuditEvent.objects.get(action="import.requeued")
    assert event.before["status"] == "staging" and event.after == {"status": "queued", "attempt": 2}
    assert "stopped sending heartbeats" in event.reason

    outcome = import_batch_process(batch_id=batch.pk)  # the next worker

    assert outcome.batch.status == ImportBatch.Status.IMPORTED and outcome.batch.attempts == 2
    assert Item.objects.count() == 7
    assert _actions(batch) == [
        "import.queued",
        "import.started",
        "import.requeued",
        "import.started",
        "import.completed",
    ]
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None


def test_the_sweep_fails_a_batch_whose_worker_died_once_attempts_are_used_up(dataset, model_admin, settings):
    settings.LOUPE_IMPORT_MAX_ATTEMPTS = 1
    batch = _stage_and_lose_the_worker(dataset, model_admin, 3)
    stored = upload_path(batch)

    import_batches_sweep()

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.error == "The worker stopped while importing 1 time; not retried. Upload the file again."
    assert not ImportStagedRow.objects.exists() and not Item.objects.exists()
    assert not stored.exists() and batch.stored_file == ""
    assert _actions(batch)[-1] == "import.failed"
    page = login(model_admin).get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert "Nothing was imported: the import failed" in page and "Upload the file again" in page


def test_a_lost_attempt_that_wakes_up_adds_nothing_after_the_sweep_took_its_batch_back(dataset, model_admin):
    batch = _queue(dataset, model_admin, synthetic_rows(3))
    claimed = import_batch_claim(batch_id=batch.pk)
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    with mock.patch("annotations.tasks.import_batch_process.apply_async"):
        import_batches_sweep()

    with pytest.raises(Superseded):
        imports._check_and_stage(claimed)  # the old worker carries on

    assert not ImportStagedRow.objects.exists()
    assert ImportBatch.objects.get(pk=batch.pk).status == ImportBatch.Status.QUEUED


def test_a_batch_saved_while_the_broker_was_down_stays_queued_says_so_and_the_sweep_sends_it(dataset, model_admin):
    client = login(model_admin)
    with mock.patch(
        "annotations.tasks.import_batch_process.apply_async", side_effect=ConnectionRefusedError("broker down")
    ):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(
                reverse("annotations:import", args=[dataset.pk]),
                {"file": SimpleUploadedFile("b.csv", csv_bytes(synthetic_rows(2))), "purpose": "review"},
            )

    batch = ImportBatch.objects.get()
    assert response.status_code == 302, "the upload is kept, not answered with a 500"
    assert (batch.status, batch.dispatched_at) == ("queued", None)
    ImportBatch.objects.filter(pk=batch.pk).update(uploaded_at=timezone.now() - timedelta(minutes=1))
    assert "The task queue could not be reached" in client.get(response["Location"]).content.decode()

    assert import_batches_sweep() == 1  # the broker is back (eager here: the task runs at once)

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.IMPORTED and Item.objects.count() == 2


def test_the_sweep_removes_what_a_crash_left_behind_a_finished_batch(dataset, model_admin):
    batch = _queue(dataset, model_admin, synthetic_rows(3))
    claimed = import_batch_claim(batch_id=batch.pk)
    imports._check_and_stage(claimed)
    # The worker died after the batch was marked finished but before its clean-up ran.
    ImportBatch.objects.filter(pk=batch.pk).update(status="failed", finished_at=timezone.now(), error="crash")
    stored = upload_path(batch)
    assert stored.exists() and ImportStagedRow.objects.filter(batch=batch).count() == 3

    import_batches_sweep()

    assert not ImportStagedRow.objects.exists() and not stored.exists()
    assert ImportBatch.objects.get(pk=batch.pk).stored_file == ""
