"""Importing through the API (issue 6, defect 3): 202 with the batch and its status URL; a worker does the import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from annotations.models import ImportBatch, Item
from tests.conftest import csv_bytes, login, synthetic_rows


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


def _post(client, dataset, data: bytes, purpose: str = "review"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("api_import_create", args=[dataset.pk]),
        {"file": SimpleUploadedFile("api.csv", data, content_type="text/csv"), "purpose": purpose},
    )


def test_an_api_upload_is_accepted_queued_and_its_status_url_shows_the_imported_batch(dataset, model_admin):
    client = login(model_admin)

    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = _post(client, dataset, csv_bytes(synthetic_rows(3)))

    batch = ImportBatch.objects.get()
    status_url = reverse("api_import_detail", args=[dataset.pk, batch.pk])
    assert response.status_code == 202
    assert response["Location"] == status_url
    assert (response.json()["id"], response.json()["status"], response.json()["status_url"]) == (
        batch.pk,
        "queued",
        status_url,
    )
    assert not Item.objects.exists()

    for callback in callbacks:
        callback()  # the commit: the task is sent (eagerly here)

    body = client.get(status_url).json()
    assert (body["status"], body["rows_imported"], body["rows_done"], body["rows_total"]) == ("imported", 3, 3, 3)


def test_a_bad_file_through_the_api_ends_rejected_with_its_report(dataset, model_admin):
    client = login(model_admin)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = _post(client, dataset, b"external_id,radius,texture,lobes\nx1,big,15,3\n")

    body = client.get(response.json()["status_url"]).json()
    assert body["status"] == "rejected"
    assert body["report"]["errors"] == [{"line": 2, "column": "radius", "value": "big", "reason": "Not a number."}]


def test_an_unknown_purpose_is_a_400_and_stores_nothing(dataset, model_admin, settings):
    response = _post(login(model_admin), dataset, csv_bytes(synthetic_rows(1)), purpose="training")

    assert response.status_code == 400
    assert not ImportBatch.objects.exists()
    assert not settings.LOUPE_UPLOAD_DIR.exists() or not any(settings.LOUPE_UPLOAD_DIR.iterdir())


def test_a_reviewer_cannot_import_through_the_api(dataset, reviewer):
    response = _post(login(reviewer), dataset, csv_bytes(synthetic_rows(1)))

    assert response.status_code == 403
    assert not ImportBatch.objects.exists()
