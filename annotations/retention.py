"""A dataset's retention settings and the purge of expired item data (issue 10, point 10).

Each dataset keeps its item data and its audit payloads for `retention_days`
(empty: the site default, settings.LOUPE_RETENTION_DAYS; unset there too:
forever). A legal hold stops everything of the dataset from expiring, whatever
the period, until it is lifted. Both are changed by model admins only, each
change audited with its before and after (and the hold with its reason).

Expiry itself is driven by governance/retention.py, which also tombstones the
audit payloads; this module owns what it does to items: `items_purge` empties
an item's data (feature values, the prediction's explanation, which quotes
them) and keeps its content_hash and feature_hash, so lineage, snapshots'
content hashes and the leakage checks still match. A purged item is never
served for review (annotations/queue.py).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotations.counters import PURGED, WAITING_STATES, counts_add
from annotations.models import Dataset, Item
from governance.audit import audit_record

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
