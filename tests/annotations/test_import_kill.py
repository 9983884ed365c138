"""kill -9 of a real Celery worker mid-import (issue 6, defect 3).

Once its heartbeat is stale the sweep queues the batch again and removes what
the dead attempt staged; another worker imports the file once, from the stored upload.
"""

from __future__ import annotations

import os
import signal
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from annotations.import_lifecycle import import_batches_sweep
from annotations.models import ImportBatch, ImportStagedRow, Item
from governance.audit_chain import verify_chain
from governance.models import AuditEvent
from tests.annotations.import_kill_worker import SLOW_STAGE_ENV
from tests.conftest import csv_bytes, login, synthetic_rows
from tests.worker import WorkerProcess, _worker_env, wait_for, worker_popen

pytestmark = pytest.mark.worker


def test_a_worker_killed_mid_import_is_noticed_and_the_import_retried_once_from_the_stored_file(
    live_worker, dataset, model_admin, settings
):
    from annotations import tasks

    queue = f"import-kill-{os.getpid()}"
    env = {**_worker_env(), SLOW_STAGE_ENV: "60"}
    doomed = WorkerProcess(
        worker_popen(app="tests.annotations.import_kill_worker", queues=queue, name="import-kill", env=env)
    )
    try:
        doomed.wait_ready()
        with mock.patch("annotations.imports.import_batch_dispatch"):  # not sent to the session's worker
            response = login(model_admin).post(
                reverse("annotations:import", args=[dataset.pk]),
                {"file": SimpleUploadedFile("kill.csv", csv_bytes(synthetic_rows(9))), "purpose": "review"},
            )
        assert response.status_code == 302
        batch = ImportBatch.objects.get()
        tasks.import_batch_process.apply_async(args=[batch.pk], queue=queue)  # to the doomed worker only

        def staging() -> ImportBatch | None:
            current = ImportBatch.objects.get(pk=batch.pk)
            return current if current.status == ImportBatch.Status.STAGING and current.rows_done == 2 else None

        wait_for(staging, 30, doomed, "the doomed worker to have staged its first chunk")
        if connection.vendor == "postgresql":  # written straight into items, in a transaction nobody sees yet
            assert not Item.objects.exists() and not ImportStagedRow.objects.exists()
        else:
            assert ImportStagedRow.objects.filter(batch=batch).count() == 2
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=10)
    finally:
        if doomed.process.poll() is None:
            doomed.stop()

    settings.LOUPE_HEARTBEAT_STALE_S = 0
    import_batches_sweep()  # what beat runs every LOUPE_DISPATCH_EVERY_S; re-sends to the ordinary queue

    assert AuditEvent.objects.filter(action="import.requeued", object_id=str(batch.pk)).count() == 1
    # Finished and cleaned up: the worker removes the staged rows and the stored file just
    # after the publish commits, so waiting for the status alone races with that clean-up.
    done = wait_for(
        lambda: ImportBatch.objects.filter(pk=batch.pk, status__in=ImportBatch.FINISHED, stored_file="").first(),
        60,
        live_worker,
        "the re-queued import to finish and clean up",
    )
    assert done.status == ImportBatch.Status.IMPORTED, (done.status, done.error)
    assert (done.attempts, done.rows_imported, done.stored_file) == (2, 9, "")
    assert Item.objects.filter(batch=done).count() == 9
    assert not ImportStagedRow.objects.exists()
    actions = list(
        AuditEvent.objects.filter(object_type="import_batch", object_id=str(batch.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["import.queued", "import.started", "import.requeued", "import.started", "import.completed"]
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None
