"""What retention does to annotations' own rows (annotations/retention.py, issue 10, point 10): a review's free
text, an import batch's row-level report, error text and files. governance/retention.py drives it; the runs,
their audit events and the legal hold are tested in tests/governance/test_retention.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from annotations.imports import full_report_path
from annotations.models import ImportBatch, ImportStagedRow, Review
from annotations.retention import (
    import_batches_expired_ids,
    import_batches_purge,
    review_reasons_remove,
    reviews_expired_ids,
)
from annotations.services import ImportRejected, import_batch_create
from tests.conftest import csv_bytes, login, synthetic_rows
from tests.helpers import answer_for, review_next

LATER = timedelta(days=31)
SECRET = "Mrs J. Doe NHS 943 476 5919"  # what a reviewer should not have typed, and an import quoted


def _refused(sql: str, params: list) -> str:
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(refused.value)


def _typed_review(dataset, reviewer) -> Review:  # type: ignore[no-untyped-def]
    from annotations.queue import queue_next_item
    from annotations.services import review_submit

    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    return review_submit(item_id=item.pk, reviewer=reviewer, answer=answer_for(item, accept=False, reason=SECRET))


# --- reviews ---------------------------------------------------------------------------------------------------


def test_only_expired_reviews_with_text_are_found_and_their_text_removed_once(trained_dataset, reviewer):
    typed = _typed_review(trained_dataset, reviewer)
    silent = review_next(trained_dataset, reviewer)  # no reason: nothing to remove
    now = timezone.now()

    assert reviews_expired_ids(dataset_id=trained_dataset.pk, cutoff=now - timedelta(days=1), limit=10) == []
    found = reviews_expired_ids(dataset_id=trained_dataset.pk, cutoff=now + LATER, limit=10)
    assert found == [typed.pk]

    with transaction.atomic():
        assert review_reasons_remove(review_ids=[typed.pk, silent.pk], now=now) == 1
        assert review_reasons_remove(review_ids=[typed.pk], now=now) == 0  # once

    after = Review.objects.get(pk=typed.pk)
    assert (after.reason, after.reason_removed_at) == ("", now)
    # The answer and why the item was picked stay: gold labels, agreement and the feedback-loop measures use them.
    kept = ("decision", "label_id", "reason_code", "selection_strategy", "guideline_version", "created_at")
    assert all(getattr(after, f) == getattr(typed, f) for f in kept)
    assert Review.objects.get(pk=silent.pk).reason_removed_at is None
    assert reviews_expired_ids(dataset_id=trained_dataset.pk, cutoff=now + LATER, limit=10) == []


def test_the_database_lets_through_only_retentions_removal_of_a_review_text(trained_dataset, reviewer):
    """Both databases: PostgreSQL's guard function and SQLite's triggers (annotations migration 0026)."""
    review = _typed_review(trained_dataset, reviewer)
    now = timezone.now()
    remove = "UPDATE annotations_review SET reason = '', reason_removed_at = %s{extra} WHERE id = %s"

    assert "immutable (UPDATE refused)" in _refused(
        "UPDATE annotations_review SET reason = 'rewritten' WHERE id = %s", [review.pk]
    )
    assert "immutable" in _refused(remove.format(extra=", decision = 'skip', label_id = NULL"), [now, review.pk])
    assert "immutable" in _refused(remove.format(extra=", selection_strategy = 'x'"), [now, review.pk])
    assert "immutable" in _refused("UPDATE annotations_review SET reason = '' WHERE id = %s", [review.pk])  # no mark
    # A mark with the text left is what the check constraint refuses.
    _refused("UPDATE annotations_review SET reason_removed_at = %s WHERE id = %s", [now, review.pk])

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(remove.format(extra=""), [now, review.pk])
    assert Review.objects.get(pk=review.pk).reason == ""

    assert "immutable" in _refused(
        "UPDATE annotations_review SET reason = %s, reason_removed_at = NULL WHERE id = %s", [SECRET, review.pk]
    )
    assert "immutable" in _refused(remove.format(extra=""), [now + LATER, review.pk])  # nor removed twice
    assert "immutable" in _refused("DELETE FROM annotations_review WHERE id = %s", [review.pk])


def test_the_item_history_says_a_reason_was_removed_under_the_retention_policy(trained_dataset, reviewer, auditor):
    review = _typed_review(trained_dataset, reviewer)
    with transaction.atomic():
        review_reasons_remove(review_ids=[review.pk], now=timezone.now())

    page = login(auditor).get(reverse("governance:item_history", args=[review.item_id])).content.decode()

    assert SECRET not in page and "under the retention policy</span>" in page


# --- import batches --------------------------------------------------------------------------------------------


def _rejected(dataset, model_admin) -> ImportBatch:  # type: ignore[no-untyped-def]
    rows = synthetic_rows(3, labelled=False)
    rows[1]["radius"] = SECRET
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="bad.csv", data=csv_bytes(rows), purpose="review"
        )
    return rejected.value.batch


def test_a_rejected_imports_report_and_its_csv_go_its_counts_stay(dataset, model_admin):
    batch = _rejected(dataset, model_admin)
    assert SECRET in str(batch.report["errors"]) and full_report_path(batch.pk).exists()
    now = timezone.now()

    assert import_batches_expired_ids(dataset_id=dataset.pk, cutoff=now - timedelta(days=1), limit=10) == []
    with transaction.atomic():
        purged, files = import_batches_purge(
            batch_ids=import_batches_expired_ids(dataset_id=dataset.pk, cutoff=now + LATER, limit=10), now=now
        )

    assert (purged, files) == ([batch.pk], 1)
    batch.refresh_from_db()
    assert batch.purged_at == now and SECRET not in str(batch.report)
    assert batch.report == {"error_count": 1, "full_report_errors": 1, "errors": [], "warnings": []}
    assert (batch.rows_rejected, batch.rows_total, batch.file_sha256) != (0, 0, "")
    assert not full_report_path(batch.pk).exists()
    assert import_batches_expired_ids(dataset_id=dataset.pk, cutoff=now + LATER, limit=10) == []

    client = login(model_admin)
    page = client.get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert "Row-level report removed on " in page and "Download the full report" not in page
    assert client.get(reverse("annotations:batch_report", args=[dataset.pk, batch.pk])).status_code == 404


def test_an_imports_duplicate_warnings_quoting_ids_go(dataset, import_rows):
    import_rows(synthetic_rows(2, labelled=False, prefix="first"))
    second = import_rows(synthetic_rows(2, labelled=False, prefix="second"))  # the same feature values
    assert second.report["warning_count"] == 2 and "second00000" in str(second.report["warnings"])

    with transaction.atomic():
        purged, _ = import_batches_purge(batch_ids=[second.pk], now=timezone.now())

    second.refresh_from_db()
    assert purged == [second.pk] and "second00000" not in str(second.report)
    assert second.report["warning_count"] == 2 and second.report["warnings"] == []


def test_a_failed_imports_error_text_and_what_a_crash_left_on_disk_go(dataset, model_admin):
    upload = Path(settings.LOUPE_UPLOAD_DIR) / "left-behind.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text(f"external_id,radius\n{SECRET},1\n")
    batch = ImportBatch.objects.create(
        dataset=dataset,
        uploaded_by=model_admin,
        file_name="crash.csv",
        file_sha256="0" * 64,
        file_size=10,
        status=ImportBatch.Status.FAILED,
        stored_file=upload.name,
        error=f"IntegrityError: Key (external_id)=({SECRET}) already exists.",
    )
    ImportStagedRow.objects.create(
        batch=batch, line=2, external_id=SECRET, values={"radius": 1}, queue_state="open", content_hash="0" * 64
    )
    partial = full_report_path(batch.pk).with_name(f"{full_report_path(batch.pk).name}.abc.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(SECRET)

    with transaction.atomic():
        purged, files = import_batches_purge(batch_ids=[batch.pk], now=timezone.now())

    batch.refresh_from_db()
    assert purged == [batch.pk] and files == 2
    assert (batch.error, batch.stored_file) == ("", "")
    assert not upload.exists() and not partial.exists()
    assert not ImportStagedRow.objects.filter(batch=batch).exists()
    page = login(model_admin).get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert SECRET not in page and "Row-level report and error text removed on " in page


def test_a_batch_still_in_a_workers_hands_is_left_alone(dataset, model_admin):
    batch = ImportBatch.objects.create(
        dataset=dataset,
        uploaded_by=model_admin,
        file_name="slow.csv",
        file_sha256="0" * 64,
        file_size=10,
        status=ImportBatch.Status.STAGING,
    )
    assert import_batches_expired_ids(dataset_id=dataset.pk, cutoff=timezone.now() + LATER, limit=10) == []
    with transaction.atomic():
        assert import_batches_purge(batch_ids=[batch.pk], now=timezone.now()) == ([], 0)


def test_a_file_that_cannot_be_deleted_leaves_its_batch_for_the_next_run(dataset, model_admin, caplog):
    batch = _rejected(dataset, model_admin)

    with mock.patch.object(Path, "unlink", side_effect=PermissionError("read-only")), transaction.atomic():
        assert import_batches_purge(batch_ids=[batch.pk], now=timezone.now()) == ([], 0)

    batch.refresh_from_db()
    assert batch.purged_at is None and SECRET in str(batch.report)
    assert f"could not delete a file of import batch {batch.pk}" in caplog.text
    with transaction.atomic():
        assert import_batches_purge(batch_ids=[batch.pk], now=timezone.now()) == ([batch.pk], 1)
