"""A dataset's retention settings and the purge of expired item data (issue 10, point 10).

Each dataset keeps its item data and its audit payloads for `retention_days`
(empty: the site default, settings.LOUPE_RETENTION_DAYS; unset there too:
forever). A legal hold stops everything of the dataset from expiring, whatever
the period, until it is lifted. Both are changed by model admins only, each
change audited with its before and after (and the hold with its reason).

Expiry itself is driven by governance/retention.py, which also tombstones the
audit payloads; this module owns what it does to annotations' own rows, which
are everywhere else item data or what a person typed about an item can sit:

- `items_purge` empties an item's data (feature values, the prediction's
  explanation, which quotes them) and keeps its content_hash and feature_hash,
  so lineage, snapshots' content hashes and the leakage checks still match. A
  purged item is never served for review (annotations/queue.py).
- `review_reasons_remove` empties a review's free-text reason (a reviewer may
  quote the item, or write about a person) and marks it `reason_removed_at`:
  the one change a review's database trigger allows (migration 0026). The
  answer stays (decision, label, reason code from the dataset's list, the
  selection reason, the guideline version): gold labels, snapshots, agreement
  and the feedback-loop measures are built on it, and none of it is typed.
- `import_batches_purge` removes an import's row-level report (its errors and
  warnings quote the file's values and ids), the failure text (an exception
  may quote a row), the full report CSV beside the upload, and any upload or
  staged rows a crash left behind. The counts, file name, size and sha256 stay:
  lineage and the datasheet's collection section name the file by them.

Kept on purpose: an item's external_id, source file and line, and observed_at.
They are lineage (the item's way back to the source system's record, which
that system keeps or deletes under its own policy), the per-dataset unique
external_id is what refuses a second import of the same row, and content_hash
covers them. None of them is a feature value or typed text.

Each period is measured from when the data was recorded: an item's and a
batch's from the upload, a review's from its creation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotations.counters import PURGED, WAITING_STATES, counts_add
from annotations.models import Dataset, ImportBatch, ImportStagedRow, Item, Review
from governance.audit import audit_record

logger = logging.getLogger(__name__)

MAX_RETENTION_DAYS = 36_500  # a hundred years: beyond that, leave it empty (the default, or forever)


def retention_days_of(dataset: Dataset) -> int | None:
    """The retention period in force for `dataset`, in days; None: kept forever."""
    if dataset.retention_days is not None:
        return dataset.retention_days
    return settings.LOUPE_RETENTION_DAYS


def retention_cutoff(dataset: Dataset, now: datetime) -> datetime | None:
    """Data recorded before this moment has expired; None when nothing of the dataset expires (hold, no period)."""
    if dataset.on_legal_hold:
        return None
    days = retention_days_of(dataset)
    return None if days is None else now - timedelta(days=days)


def dataset_retention_set(*, dataset_id: int, user: AbstractBaseUser, retention_days: int | None) -> Dataset:
    """Set the dataset's retention period (None: the site default). Precondition: `user` is a model admin of
    the dataset. ValidationError naming the field, changing nothing, for a period out of range or unchanged."""
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValidationError(
            {
                "retention_days": f"The retention period must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"
                f" (got {retention_days}); leave it empty for the site default."
            }
        )
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        if dataset.retention_days == retention_days:
            raise ValidationError({"retention_days": "The retention period is already that."})
        before = {"retention_days": dataset.retention_days}
        dataset.retention_days = retention_days
        dataset.save(update_fields=["retention_days"])
        audit_record(
            actor=user,
            action="dataset.retention_changed",
            obj=dataset,
            dataset_id=dataset.pk,
            before=before,
            after={"retention_days": retention_days, "site_default_days": settings.LOUPE_RETENTION_DAYS},
        )
    return dataset


def dataset_legal_hold_set(*, dataset_id: int, user: AbstractBaseUser, hold: bool, reason: str) -> Dataset:
    """Place (hold=True) or lift a legal hold, with a reason either way. Precondition: `user` is a model admin
    of the dataset. ValidationError, changing nothing, without a reason or when it is already in that state."""
    reason = reason.strip()[:2000]
    if not reason:
        raise ValidationError({"reason": "Say why the legal hold is " + ("placed." if hold else "lifted.")})
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        if dataset.on_legal_hold == hold:
            raise ValidationError(f"{dataset.name} is {'already' if hold else 'not'} on legal hold.")
        before = {"legal_hold_since": dataset.legal_hold_since, "legal_hold_reason": dataset.legal_hold_reason}
        dataset.legal_hold_since = timezone.now() if hold else None
        dataset.legal_hold_reason = reason if hold else ""
        dataset.save(update_fields=["legal_hold_since", "legal_hold_reason"])
        audit_record(
            actor=user,
            action="dataset.legal_hold_placed" if hold else "dataset.legal_hold_lifted",
            obj=dataset,
            dataset_id=dataset.pk,
            before=before,
            after={"legal_hold_since": dataset.legal_hold_since},
            reason=reason,
        )
    return dataset


def items_expired_ids(*, dataset_id: int, cutoff: datetime, limit: int, after_id: int = 0) -> list[int]:
    """Up to `limit` ids (above `after_id`) of the dataset's unpurged items imported before `cutoff`, in id
    order, locked. Precondition: inside the caller's transaction, which already holds the dataset row.

    Only the item rows are locked (`of`), not the import batches the filter joins: those have no place in
    the lock order. No-key locks, so reviews referencing the items are not blocked meanwhile."""
    return list(
        Item.objects.select_for_update(no_key=True, of=("self",))
        .filter(dataset_id=dataset_id, purged_at__isnull=True, batch__uploaded_at__lt=cutoff, id__gt=after_id)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def items_purge(*, item_ids: list[int], now: datetime) -> int:
    """Empty the data of these items and mark them purged; their hashes stay. Returns how many changed.

    Precondition: inside the caller's transaction, the rows locked (items_expired_ids). The lease is
    released too, so a reviewer holding one of them is served another item next. Those that were waiting
    for review or adjudication are counted as purged in their state (annotations/counters.py), so the
    pages stop promising them to anyone."""
    items = Item.objects.filter(pk__in=item_ids, purged_at__isnull=True)
    waiting = items.filter(queue_state__in=WAITING_STATES).values_list("dataset_id", "queue_state")
    deltas: dict[int, dict[str, int]] = defaultdict(dict)
    for dataset_id, state, n in waiting.annotate(n=Count("id")).order_by():
        deltas[dataset_id][PURGED + state] = n
    changed = items.update(
        values={},
        prediction_explanation=None,
        purged_at=now,
        leased_to=None,
        lease_expires_at=None,
        lease_started_at=None,
    )
    for dataset_id, counted in deltas.items():
        counts_add(dataset_id=dataset_id, deltas=counted)
    return changed


def reviews_expired_ids(*, dataset_id: int, cutoff: datetime, limit: int, after_id: int = 0) -> list[int]:
    """Up to `limit` ids (above `after_id`) of the dataset's reviews made before `cutoff` that still hold free
    text, in id order. Read through the partial index review_reason_kept (only reviews with text are in it).

    Not locked: nobody else ever updates a review, and review_reasons_remove's UPDATE re-checks the text is
    there, so two overlapping runs remove each text once."""
    return list(
        Review.objects.filter(item__dataset_id=dataset_id, created_at__lt=cutoff, id__gt=after_id)
        .exclude(reason="")
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def review_reasons_remove(*, review_ids: list[int], now: datetime) -> int:
    """Empty these reviews' free-text reason and mark when; returns how many changed.

    Precondition: inside the caller's transaction (governance/retention.py). The review's trigger lets
    exactly this UPDATE through, once; `reason_code` is a code from the dataset's list, not text, and stays."""
    return (
        Review.objects.filter(pk__in=review_ids, reason_removed_at__isnull=True)
        .exclude(reason="")
        .update(reason="", reason_removed_at=now)
    )


def import_batches_expired_ids(*, dataset_id: int, cutoff: datetime, limit: int, after_id: int = 0) -> list[int]:
    """Up to `limit` ids (above `after_id`) of the dataset's finished import batches uploaded before `cutoff`
    whose report and files are still here, in id order. A batch still queued or in a worker's hands is left
    alone: its upload is what the worker reads (the import sweep finishes or fails it first)."""
    return list(
        ImportBatch.objects.filter(
            dataset_id=dataset_id,
            uploaded_at__lt=cutoff,
            status__in=ImportBatch.FINISHED,
            purged_at__isnull=True,
            id__gt=after_id,
        )
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


# What a report keeps once purged: counts and timings, none of them a value from the file.
REPORT_KEPT_KEYS = ("error_count", "warning_count", "labelled_rows", "full_report_errors", "seconds")


def _report_counts(report: dict[str, Any]) -> dict[str, Any]:
    kept = {key: report[key] for key in REPORT_KEPT_KEYS if key in report}
    # The lists stay, empty, so a reader of the report's shape (the API, the batch page) needs no special case.
    return {**kept, "errors": [], "warnings": []}


def _batch_files(batch_id: int, stored_file: str) -> list[Path]:
    """The files of a batch under LOUPE_UPLOAD_DIR: the upload if still there, the full report CSV and any
    partial one a crash left (annotations/imports.py writes it under a name of its own, then renames)."""
    from annotations.imports import full_report_path  # imports pandas: only when there is something to remove

    report = full_report_path(batch_id)
    files = [report, *report.parent.glob(f"{report.name}.*.partial")]
    if stored_file:
        files.append(Path(settings.LOUPE_UPLOAD_DIR) / stored_file)
    return files


def import_batches_purge(*, batch_ids: list[int], now: datetime) -> tuple[list[int], int]:
    """Remove these finished batches' files, staged rows, row-level reports and error text; mark them purged.
    Returns (the ids of the batches purged, files deleted).

    Precondition: inside the caller's transaction, which holds the dataset row. The files go first, inside
    the transaction: should it roll back, a file is gone and the next run purges the row (a removal that
    comes early is what retention is for). A file that cannot be deleted (not a missing one) leaves its
    batch unpurged, logged, for the next run, rather than marked purged with the file still there. The
    row's UPDATE is conditional (still not purged), so of two overlapping runs one purges it."""
    purged: list[int] = []
    files_deleted = 0
    batches = ImportBatch.objects.filter(pk__in=batch_ids, purged_at__isnull=True, status__in=ImportBatch.FINISHED)
    for batch_id, report, stored_file in batches.order_by("pk").values_list("pk", "report", "stored_file"):
        try:
            deleted = _files_delete(_batch_files(batch_id, stored_file))
        except OSError:
            logger.exception(
                "Retention could not delete a file of import batch %s; it is tried again next run.", batch_id
            )
            continue
        # A finished batch has none left unless a crash came between its end and its clean-up.
        ImportStagedRow.objects.filter(batch_id=batch_id).delete()
        updated = ImportBatch.objects.filter(pk=batch_id, purged_at__isnull=True).update(
            report=_report_counts(report or {}), error="", stored_file="", purged_at=now
        )
        if updated:
            purged.append(batch_id)
            files_deleted += deleted
    return purged, files_deleted


def _files_delete(paths: list[Path]) -> int:
    deleted = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
    return deleted
