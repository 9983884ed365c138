"""A dataset's queue settings: strategy, random audit slice, overlap, blind share, reason codes (issue 8).

Changing them is a model admin's act, audited with before and after. Turning
the audit slice off needs a recorded reason: the slice is what keeps later
estimates of the model's performance free of the queue's own bias. A new
strategy reorders the open items in a worker (`queue_priorities_recompute`),
a chunk at a time, because at a million items that is a million rows to write;
until it finishes, items not yet rescored keep their old place and their old
strategy name, so every review still records the reason that really picked it.

The reason codes (why a reviewer corrects the model, annotations/reason_codes.py)
are edited with the rest and saved in the same transaction, under their own
audit action (dataset.reason_codes_changed) so they can be traced apart from
the queue's settings. Reviews already given keep the code they recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from annotations.models import Dataset, Item, QueueStrategy
from annotations.queue_scores import PROBABILITY_STRATEGIES, priorities_from_scores, strategy_scores
from annotations.reason_codes import reason_codes_check
from governance.audit import audit_record

logger = logging.getLogger(__name__)
MAX_OVERLAP = 10
RESCORE_CHUNK = 5000


@dataclass(frozen=True)
class QueueSettings:
    strategy: str
    audit_slice_percent: int
    audit_slice_off_reason: str
    overlap: int
    blind_percent: int
    # [{"code": ..., "text": ...}] in display order; None: leave the dataset's list as it is (a caller that
    # only sets the queue, such as the loop simulation or an API client that predates the codes).
    reason_codes: list[dict[str, str]] | None = None

    @classmethod
    def of(cls, dataset: Dataset) -> QueueSettings:
        return cls(
            strategy=dataset.queue_strategy,
            audit_slice_percent=dataset.audit_slice_percent,
            audit_slice_off_reason=dataset.audit_slice_off_reason,
            overlap=dataset.overlap,
            blind_percent=dataset.blind_percent,
            reason_codes=list(dataset.reason_codes),
        )

    def queue_part(self) -> dict[str, Any]:
        """The settings without the reason codes: the before and after of dataset.queue_settings_changed."""
        return {name: value for name, value in self.__dict__.items() if name != "reason_codes"}


def _check(wanted: QueueSettings) -> QueueSettings:
    """The settings, cleaned; ValidationError naming each bad field (and the bad reason-code entry)."""
    errors: dict[str, str] = {}
    if wanted.strategy not in QueueStrategy.values:
        errors["strategy"] = f"Unknown strategy {wanted.strategy!r}; choose one of {', '.join(QueueStrategy.values)}."
    if not 0 <= wanted.audit_slice_percent <= 100:
        errors["audit_slice_percent"] = "The audit slice is a share of served items: 0 to 100 (%)."
    reason = wanted.audit_slice_off_reason.strip()[:2000]
    if wanted.audit_slice_percent == 0 and not reason:
        errors["audit_slice_off_reason"] = (
            "Say why the random audit slice is turned off: without it no unbiased estimate of the model's "
            "performance can be made from reviews."
        )
    if not 1 <= wanted.overlap <= MAX_OVERLAP:
        errors["overlap"] = f"Overlap is the number of reviewers per item: 1 to {MAX_OVERLAP}."
    if not 0 <= wanted.blind_percent <= 100:
        errors["blind_percent"] = "The blind share is a share of served items: 0 to 100 (%)."
    codes = wanted.reason_codes
    if codes is not None:
        try:
            reason_codes_check(codes)
        except ValidationError as exc:
            errors.update({field: " ".join(messages) for field, messages in exc.message_dict.items()})
        else:
            codes = [{"code": entry["code"], "text": entry["text"].strip()} for entry in codes]
    if errors:
        raise ValidationError(errors)
    return QueueSettings(
        strategy=wanted.strategy,
        audit_slice_percent=wanted.audit_slice_percent,
        audit_slice_off_reason=reason if wanted.audit_slice_percent == 0 else "",
        overlap=wanted.overlap,
        blind_percent=wanted.blind_percent,
        reason_codes=codes,
    )


def dataset_queue_settings_set(*, dataset_id: int, user: AbstractBaseUser, wanted: QueueSettings) -> bool:
    """Apply `wanted` to the dataset; True when the strategy changed (the caller then queues the rescoring).

    Precondition: the caller has checked that `user` is a model admin of the
    dataset. Raises ValidationError, changing nothing, for a bad value. Overlap
    and blind share apply to items answered from now on; items already decided
    keep their gold labels. New reason codes apply to answers from now on;
    reviews already given keep the code they recorded. Each kind of change
    writes its own audit event with before and after, in the one transaction.
    """
    cleaned = _check(wanted)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        before = QueueSettings.of(dataset)
        if cleaned.reason_codes is None:
            cleaned = replace(cleaned, reason_codes=before.reason_codes)
        if before == cleaned:
            return False
        dataset.queue_strategy = cleaned.strategy
        dataset.audit_slice_percent = cleaned.audit_slice_percent
        dataset.audit_slice_off_reason = cleaned.audit_slice_off_reason
        dataset.overlap = cleaned.overlap
        dataset.blind_percent = cleaned.blind_percent
        dataset.reason_codes = cleaned.reason_codes
        dataset.save(
            update_fields=[
                "queue_strategy",
                "audit_slice_percent",
                "audit_slice_off_reason",
                "overlap",
                "blind_percent",
                "reason_codes",
            ]
        )
        if before.queue_part() != cleaned.queue_part():
            audit_record(
                actor=user,
                action="dataset.queue_settings_changed",
                obj=dataset,
                dataset_id=dataset.pk,
                before=before.queue_part(),
                after=cleaned.queue_part(),
                reason=cleaned.audit_slice_off_reason,
            )
        if before.reason_codes != cleaned.reason_codes:
            audit_record(
                actor=user,
                action="dataset.reason_codes_changed",
                obj=dataset,
                dataset_id=dataset.pk,
                before={"reason_codes": before.reason_codes},
                after={"reason_codes": cleaned.reason_codes},
            )
    return before.strategy != cleaned.strategy


def queue_priorities_dispatch(*, dataset_id: int) -> bool:
    """Hand the rescoring to a worker; False when the broker cannot be reached (saving again retries)."""
    from annotations import tasks

    try:
        tasks.queue_priorities_recompute.apply_async(args=[dataset_id], retry=False)
    except Exception:  # noqa: BLE001 - any broker failure: say so, never rescore inside the request
        logger.warning("Dataset %s: could not queue the rescoring of open items.", dataset_id, exc_info=True)
        return False
    return True


def queue_priorities_recompute(*, dataset_id: int) -> int:
    """Rescore the dataset's open items under its current strategy, a chunk at a time; returns items rescored.

    Each chunk is its own short transaction (no lock held across the dataset).
    Safe to run twice, and to run while reviewers work: an item leased or
    answered meanwhile is simply rescored or skipped by its state.
    """
    dataset = Dataset.objects.get(pk=dataset_id)
    strategy = dataset.queue_strategy
    if strategy not in PROBABILITY_STRATEGIES:
        return _rescore_from_columns(dataset_id, strategy)
    done, after = 0, 0
    while True:
        rows = list(
            Item.objects.filter(dataset_id=dataset_id, queue_state=Item.QueueState.OPEN, pk__gt=after)
            .exclude(predicted_probabilities=None)
            .order_by("pk")
            .values_list("pk", "predicted_probabilities")[:RESCORE_CHUNK]
        )
        if not rows:
            return done
        after = rows[-1][0]
        ids = [pk for pk, _ in rows]
        # Any class order will do: every probability strategy is symmetric in the classes.
        proba = np.array([list(probabilities.values()) for _, probabilities in rows], dtype=float)
        priorities = priorities_from_scores(strategy_scores(strategy, proba)).tolist()
        with transaction.atomic():
            _write_priorities(ids, priorities, strategy)
        done += len(ids)


def _rescore_from_columns(dataset_id: int, strategy: str) -> int:
    """Disagreement and label issue, whose scores are already columns: one UPDATE per RESCORE_CHUNK open items
    in id order, each its own transaction. Why chunked: one UPDATE over a million open items held every one of
    their row locks for over a minute, and the queue's claim skips locked rows (SKIP LOCKED), so reviewers
    were served nothing, or waited, until it ended."""
    table = Item._meta.db_table
    if strategy == QueueStrategy.DISAGREEMENT:
        update = (
            f"UPDATE {table} SET queue_priority = 1.0 - disagreement_score,"
            " priority_strategy = CASE WHEN disagreement_score IS NULL THEN '' ELSE %s END"
            " WHERE dataset_id = %s AND queue_state = %s AND id >= %s AND id <= %s"
            # Only rows that change: a rewritten row is a dead tuple in every index until vacuum.
            " AND (queue_priority IS DISTINCT FROM 1.0 - disagreement_score OR priority_strategy <>"
            " CASE WHEN disagreement_score IS NULL THEN '' ELSE %s END)"
        )
        before, after_params = [strategy], [strategy]
    else:  # label issue: only reopened gold labels have a score; the rest wait in arrival order
        update = (
            f"UPDATE {table} SET queue_priority = NULL, priority_strategy = ''"
            " WHERE dataset_id = %s AND queue_state = %s AND id >= %s AND id <= %s AND priority_strategy <> %s"
            " AND (queue_priority IS NOT NULL OR priority_strategy <> '')"  # only rows that change
        )
        before, after_params = [], [strategy]
    done, after = 0, 0
    while True:
        ids = list(
            Item.objects.filter(dataset_id=dataset_id, queue_state=Item.QueueState.OPEN, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:RESCORE_CHUNK]
        )
        if not ids:
            return done
        after = ids[-1]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update, [*before, dataset_id, Item.QueueState.OPEN, ids[0], ids[-1], *after_params])
            done += cursor.rowcount


def _write_priorities(ids: list[int], priorities: list[float], strategy: str) -> None:
    table = Item._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS item SET queue_priority = v.priority, priority_strategy = %s"
                " FROM unnest(%s::bigint[], %s::float8[]) AS v(id, priority)"
                " WHERE item.id = v.id AND item.queue_state = %s",
                [strategy, ids, priorities, Item.QueueState.OPEN],
            )
        else:  # SQLite: executemany of a primary-key update is its fast path
            cursor.executemany(
                f"UPDATE {table} SET queue_priority = %s, priority_strategy = %s WHERE id = %s AND queue_state = %s",
                [(priority, strategy, pk, Item.QueueState.OPEN) for pk, priority in zip(ids, priorities, strict=True)],
            )
