"""Retention with tombstones (issue 10, point 10).

What expires, per dataset, after its retention period (annotations/retention.py):

- an item's data (feature values and the explanation quoting them): emptied,
  the item kept with its content and feature hashes and `purged_at`;
- a review's free-text reason: emptied, the answer kept, `reason_removed_at`;
- an import batch's row-level report (errors and warnings quote the file's
  values and ids), its failure text, and its files on disk (the full report
  CSV, any upload or staged rows a crash left): removed, the counts, file name
  and sha256 kept, `purged_at`;
- an audit event's payload (before, after, reason): removed, the header (seq,
  time, actor, action, object, dataset, request id, hashes) kept forever.

What stays, and why, is said in annotations/retention.py (ids, source and
times are lineage). Records that are not a dataset's item data nor typed
about an item are outside retention: the read log (who saw which item, not
what), model admins' reasons for runs and promotions and the narratives and
signatures (the governance record, several covered by signatures), guideline
texts, and model artifacts (signed by their sha256).

The chain still verifies because events since hash scheme 2 hash the payload's
digest, not the payload (governance/audit_chain.py); the database triggers
allow exactly this one UPDATE of an event (migration 0021). Events written
before scheme 2 cover their payload directly and are never tombstoned, and the
record of retention itself (the retention and legal-hold events) is kept.
Merkle checkpoints sign event hashes, which do not change, so they still
verify too. Only events of a dataset expire; site-wide events (sign-ins,
checkpoints, verifications) have no dataset period and are kept.

Each batch is one transaction: lock the dataset row (a legal hold placed
meanwhile wins), purge up to `batch_size` items, reviews' texts, import
batches and events each, and record one `retention.applied` event naming the
counts and the id and seq ranges. Running it again finds nothing left and
writes nothing, so the beat task and the command are safe to repeat or overlap.
Locks, in the design's order: the dataset row, item rows, then rows nobody
else changes once written (finished batches, reviews: conditional UPDATEs),
event rows, the chain head last (inside audit_record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.models import Dataset
from annotations.retention import (
    import_batches_expired_ids,
    import_batches_purge,
    items_expired_ids,
    items_purge,
    retention_cutoff,
    review_reasons_remove,
    reviews_expired_ids,
)
from governance.audit import audit_record
from governance.audit_chain import PAYLOAD_DIGEST_SCHEME
from governance.models import AuditEvent

APPLIED_ACTION = "retention.applied"
# The record of retention itself is kept whatever the period.
KEPT_ACTIONS = (APPLIED_ACTION, "dataset.retention_changed", "dataset.legal_hold_placed", "dataset.legal_hold_lifted")


@dataclass(frozen=True)
class RetentionBatch:
    dataset_id: int
    items_purged: int
    events_tombstoned: int
    first_seq: int | None
    last_seq: int | None
    last_item_id: int | None = None
    review_reasons_removed: int = 0
    last_review_id: int | None = None
    import_reports_removed: int = 0
    last_batch_id: int | None = None
    files_deleted: int = 0


@dataclass(frozen=True)
class _After:
    """Keyset: each batch starts where the previous one of the same run ended."""

    item_id: int = 0
    seq: int = 0
    review_id: int = 0
    batch_id: int = 0

    def past(self, batch: RetentionBatch) -> _After:
        return _After(
            item_id=batch.last_item_id or self.item_id,
            seq=batch.last_seq or self.seq,
            review_id=batch.last_review_id or self.review_id,
            batch_id=batch.last_batch_id or self.batch_id,
        )


def retention_apply(
    *, dataset_ids: list[int] | None = None, batch_size: int | None = None, now: datetime | None = None
) -> list[RetentionBatch]:
    """Tombstone what has expired in every dataset (or those given), batch by batch; skip datasets on hold."""
    batch_size = batch_size or settings.LOUPE_RETENTION_BATCH
    if batch_size < 1:
        raise ValueError(f"The retention batch size must be at least 1 (got {batch_size}).")
    now = now or timezone.now()
    datasets = Dataset.objects.order_by("pk")
    if dataset_ids is not None:
        datasets = datasets.filter(pk__in=dataset_ids)
    done: list[RetentionBatch] = []
    for dataset_id in datasets.values_list("pk", flat=True):
        after = _After()
        while batch := _apply_one_batch(dataset_id=dataset_id, batch_size=batch_size, now=now, after=after):
            done.append(batch)
            after = after.past(batch)
    return done


def _apply_one_batch(*, dataset_id: int, batch_size: int, now: datetime, after: _After) -> RetentionBatch | None:
    """One transaction: None when nothing (more) has expired, or the dataset is on hold or keeps forever."""
    with transaction.atomic():
        # Lock order: dataset row, item rows, (batch and review rows,) event rows, chain head last in audit_record.
        dataset = Dataset.objects.select_for_update(no_key=True).get(pk=dataset_id)
        cutoff = retention_cutoff(dataset, now)
        if cutoff is None:
            return None
        item_ids = items_expired_ids(dataset_id=dataset_id, cutoff=cutoff, limit=batch_size, after_id=after.item_id)
        items_purged = items_purge(item_ids=item_ids, now=now) if item_ids else 0
        batch_ids = import_batches_expired_ids(
            dataset_id=dataset_id, cutoff=cutoff, limit=batch_size, after_id=after.batch_id
        )
        purged_batches, files_deleted = import_batches_purge(batch_ids=batch_ids, now=now) if batch_ids else ([], 0)
        review_ids = reviews_expired_ids(
            dataset_id=dataset_id, cutoff=cutoff, limit=batch_size, after_id=after.review_id
        )
        reasons_removed = review_reasons_remove(review_ids=review_ids, now=now) if review_ids else 0
        seqs = list(
            AuditEvent.objects.select_for_update(no_key=True)
            .filter(
                dataset_id=dataset_id,
                seq__gt=after.seq,
                created_at__lt=cutoff,
                hash_scheme=PAYLOAD_DIGEST_SCHEME,
                tombstoned_at__isnull=True,
            )
            .exclude(action__in=KEPT_ACTIONS)
            .order_by("seq")
            .values_list("seq", flat=True)[:batch_size]
        )
        events_tombstoned = (
            AuditEvent.objects.filter(seq__in=seqs, tombstoned_at__isnull=True).update(
                before=None, after=None, reason="", tombstoned_at=now
            )
            if seqs
            else 0
        )
        if not (items_purged or events_tombstoned or reasons_removed or purged_batches):
            return None
        batch = RetentionBatch(
            dataset_id=dataset_id,
            items_purged=items_purged,
            events_tombstoned=events_tombstoned,
            first_seq=seqs[0] if seqs else None,
            last_seq=seqs[-1] if seqs else None,
            last_item_id=item_ids[-1] if item_ids else None,
            review_reasons_removed=reasons_removed,
            last_review_id=review_ids[-1] if review_ids else None,
            import_reports_removed=len(purged_batches),
            # The keyset moves past every batch looked at: one whose file could not be deleted waits for the next run.
            last_batch_id=batch_ids[-1] if batch_ids else None,
            files_deleted=files_deleted,
        )
        days = (now - cutoff).days
        audit_record(
            actor=None,
            actor_username="retention",
            action=APPLIED_ACTION,
            object_type="dataset",
            object_id=dataset_id,
            dataset_id=dataset_id,
            after={
                "retention_days": days,
                "cutoff": cutoff,
                "items_purged": items_purged,
                "first_item_id": item_ids[0] if item_ids else None,
                "last_item_id": item_ids[-1] if item_ids else None,
                "review_reasons_removed": reasons_removed,
                "first_review_id": review_ids[0] if review_ids else None,
                "last_review_id": review_ids[-1] if review_ids else None,
                # Few per dataset, so named one by one: which import reports are gone.
                "import_batches_purged": purged_batches,
                "files_deleted": files_deleted,
                "events_tombstoned": events_tombstoned,
                "first_seq": batch.first_seq,
                "last_seq": batch.last_seq,
            },
            reason=f"Retention period of {days} days expired; personal data and payloads removed, hashes kept.",
        )
    return batch
