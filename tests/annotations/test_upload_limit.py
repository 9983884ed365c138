"""An upload past LOUPE_IMPORT_MAX_BYTES is stopped as it arrives, with a message that says why (issue 7).

The limit is checked by an upload handler while the body streams in
(workflow_site/upload_limit.py), so a file far over it is never written to disk,
and the page and the API say "larger than the limit" instead of "no file".
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotations.models import ImportBatch
from annotations.services import ImportRejected, import_batch_create
from tests.conftest import csv_bytes, login, synthetic_rows

pytestmark = pytest.mark.django_db


def _file(rows: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.csv", csv_bytes(synthetic_rows(rows)), content_type="text/csv")


def test_the_page_stops_a_file_over_the_limit_and_says_so(dataset, model_admin, settings):
    settings.IMPORT_MAX_BYTES = 2_000
    response = login(model_admin).post(
        reverse("annotations:import", args=[dataset.pk]), {"file": _file(200), "purpose": "review"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "The file is larger than the limit of 2,000 bytes." in page
    assert "This field is required" not in page
    assert "Up to 2.0\xa0KB for CSV" in page  # the limit is on the page before any upload, too
    assert not ImportBatch.objects.exists()


def test_the_api_stops_a_file_over_the_limit_and_says_so(dataset, model_admin, settings):
    settings.IMPORT_MAX_BYTES = 2_000
    response = login(model_admin).post(
        reverse("api_import_create", args=[dataset.pk]), {"file": _file(200), "purpose": "review"}
    )

    assert response.status_code == 400
    assert response.json() == {"file": ["The file is larger than the limit of 2,000 bytes."]}
    assert not ImportBatch.objects.exists()


def test_a_file_under_the_limit_is_queued(dataset, model_admin, settings):
    settings.IMPORT_MAX_BYTES = 1_000_000
    response = login(model_admin).post(
        reverse("annotations:import", args=[dataset.pk]), {"file": _file(5), "purpose": "review"}
    )

    assert response.status_code == 302
    assert ImportBatch.objects.get().status == ImportBatch.Status.QUEUED  # sent to the worker after commit


def test_a_converted_format_over_its_own_limit_is_rejected_with_a_reason(dataset, model_admin, settings):
    settings.IMPORT_CONVERTED_MAX_BYTES = 100
    data = b"\n".join(b'{"external_id": "a%d", "radius": 1, "texture": 2, "lobes": 3}' % i for i in range(5))
    with pytest.raises(ImportRejected) as caught:
        import_batch_create(dataset=dataset, user=model_admin, file_name="rows.jsonl", data=data, purpose="review")

    [error] = caught.value.batch.report["errors"]
    assert error["line"] is None
    assert error["reason"].startswith(f"The file is {len(data):,} bytes; JSON Lines files are converted in memory")
