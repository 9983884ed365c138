"""The import page in a real browser (issue 6, defect 3): the progress bar moves as the worker stages rows
(htmx polls the status partial every second), the page stops polling once the batch is imported, and it
passes axe and the Content-Security-Policy while it does."""

from __future__ import annotations

import pytest

from annotations.imports import import_batch_process, import_batch_upload
from annotations.models import ImportBatch
from tests.conftest import csv_bytes, synthetic_rows
from tests.e2e.browser import sign_in, sync_api
from tests.e2e.test_accessibility import axe_violations, report

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def test_the_batch_page_shows_progress_as_rows_are_staged_and_then_what_was_imported(
    live_server, page, dataset, model_admin, settings, tmp_path
):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"
    refused: list[str] = []
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    batch = import_batch_upload(
        dataset=dataset,
        user=model_admin,
        file_name="big.csv",
        chunks=[csv_bytes(synthetic_rows(8))],
        purpose="review",
        dispatch=False,
    )
    ImportBatch.objects.filter(pk=batch.pk).update(status="staging", rows_total=8, rows_done=2, stage="Staging rows")

    sign_in(page, live_server.url, model_admin.username)
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/imports/{batch.pk}/")
    bar = page.get_by_role("progressbar", name="Rows staged")
    expect(bar).to_have_attribute("value", "2")
    expect(page.get_by_text("Staging rows: 2 of 8 rows")).to_be_visible()
    found = axe_violations(page)
    assert not found, report({"import in progress": found})

    ImportBatch.objects.filter(pk=batch.pk).update(rows_done=6)  # the worker moves on
    expect(bar).to_have_attribute("value", "6", timeout=5_000)

    ImportBatch.objects.filter(pk=batch.pk).update(status="queued", rows_done=0)
    import_batch_process(batch_id=batch.pk)  # the worker runs it to the end

    expect(page.get_by_text("Rows imported")).to_be_visible(timeout=5_000)
    assert page.locator("#import-status").get_attribute("hx-trigger") is None, "polling stops once imported"
    found = axe_violations(page)
    assert not found, report({"import finished": found})
    assert refused == []
