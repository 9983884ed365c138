"""Re-review of gold labels that are likeliest wrong (issue 8, point 1: the label-issue strategy).

`label_issues_reopen` scores every done item's gold label with confident
learning (models_app/ml/label_issues.py: cleanlab on out-of-fold probabilities
of the dataset's own pipeline) and sends the `limit` likeliest label errors back
to the review queue:

- queue state done → open, answers 0, `queue_priority` = the label quality (so
  the queue, ascending, serves the worst first) and `priority_strategy`
  'label_issue' (what the review records as its selection reason);
- `review_round_started_at` = now: consensus (annotations/services.py
  `_item_settle`) and the adjudicator's side-by-side view read only the answers
  of the new round, so an old answer can neither settle the item nor outvote the
  re-review;
- the gold label stays until the re-review replaces it (a training snapshot may
  hold it, and an item is never left without the label it had);
- the counters move in the same transaction (state:done → state:open, and
  labelled_at_import for a label that came with the file), with one audit event
  listing every reopened item and its score.

The holdout is never scored or touched: it is sequestered from review and training.

Scoring reads and fits outside any transaction (minutes on a large dataset);
the reopening then locks each candidate row and reopens it only if it is still
done with the gold label that was scored, taking the next worst otherwise, so
an answer revised meanwhile is never reopened on a stale score.

The queue keeps excluding reviewers who already answered the item, in any
round: a re-review is a fresh pair of eyes, not the same reviewer asked twice.
The reopened items keep their label-issue priority under the dataset's
label-issue strategy; under another strategy the next rescoring of open items
ranks them by that strategy like every other open item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from annotations.counters import LABELLED_AT_IMPORT, STATE, counts_add
from annotations.models import Dataset, GoldLabel, Item, QueueStrategy
from governance.audit import audit_record
from models_app.data import class_names, feature_specs, frame_for_items, labels_hash
from models_app.ml import baseline
from models_app.ml.label_issues import DEFAULT_FOLDS, METHOD, LabelIssueDataError, classes_check, label_issue_scores

logger = logging.getLogger(__name__)

MAX_LIMIT = 10_000
_LOCK_CHUNK = 1_000  # candidate rows locked per statement while reopening
_NO_FEATURES = "The dataset has no feature to learn from (numbers, yes/no, categories or free text)."


@dataclass(frozen=True)
class LabelIssuesReopened:
    """What one call did."""

    scored: int  # done gold labels scored
    flagged: int  # of those, cleanlab flags as likely errors
    reopened: list[tuple[int, float]]  # (item id, label quality), worst first
    skipped: int  # candidates that changed while scoring (no longer done, or a new gold label)


def limit_check(limit: object) -> int:
    """The limit as an int in 1..MAX_LIMIT, or a ValidationError naming the field."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"Give a whole number of items from 1 to {MAX_LIMIT:,}, not {limit!r}."})
    return limit


def _done_gold(dataset: Dataset):  # type: ignore[no-untyped-def]
    # Done items only: open and adjudicated ones are being reviewed already, and the
    # holdout is sequestered (a holdout item is never done, so never read here).
    # Not items whose data retention removed: their values are gone.
    return GoldLabel.objects.filter(
        dataset=dataset, item__queue_state=Item.QueueState.DONE, item__purged_at__isnull=True
    )


def label_issues_check(*, dataset: Dataset) -> int:
    """The number of gold labels a job would score; ValidationError when the job would be refused.

    One grouped count, so the API can refuse at once instead of queueing a job that cannot run.
    """
    counts = dict(_done_gold(dataset).values_list("label__name").annotate(n=Count("id")).order_by())
    if not counts:
        raise ValidationError("The dataset has no reviewed items with gold labels to check.")
    try:
        classes_check(counts, class_names(dataset), DEFAULT_FOLDS)
    except LabelIssueDataError as exc:
        raise ValidationError(str(exc)) from exc
    if not feature_specs(dataset, with_text=True):
        raise ValidationError(_NO_FEATURES)
    return sum(counts.values())


def _scores(dataset: Dataset, golds: list[tuple[int, int, str, str]], *, seed: int):  # type: ignore[no-untyped-def]
    specs = feature_specs(dataset, with_text=True)
    if not specs:
        raise ValidationError(_NO_FEATURES)
    frame = frame_for_items([item_id for item_id, *_ in golds], specs)
    try:
        return label_issue_scores(
            frame, [name for *_, name in golds], specs, class_names(dataset), folds=DEFAULT_FOLDS, seed=seed
        )
    except LabelIssueDataError as exc:
        raise ValidationError(str(exc)) from exc


def _items_reopen(rows: list[tuple[int, float]], now: datetime) -> None:
    """done → open with each item's (id, priority): one UPDATE … FROM unnest on PostgreSQL, executemany elsewhere.

    Precondition: the rows are locked. Not bulk_update: its CASE per field and row took
    about 6 ms an item on PostgreSQL (10,000 items in a minute); this is one join.
    """
    if not rows:
        return
    table = connection.ops.quote_name(Item._meta.db_table)
    started = connection.ops.adapt_datetimefield_value(now)  # as the ORM would store it
    sets = (
        "queue_state = %s, answers_count = 0, queue_priority = {priority}, priority_strategy = %s,"
        " review_round_started_at = %s"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS item SET {sets.format(priority='v.priority')}"
                " FROM unnest(%s::bigint[], %s::float8[]) AS v(id, priority) WHERE item.id = v.id",
                [
                    Item.QueueState.OPEN,
                    QueueStrategy.LABEL_ISSUE.value,
                    started,
                    [pk for pk, _ in rows],
                    [priority for _, priority in rows],
                ],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET {sets.format(priority='%s')} WHERE id = %s",
                [
                    (Item.QueueState.OPEN, priority, QueueStrategy.LABEL_ISSUE.value, started, pk)
                    for pk, priority in rows
                ],
            )


def _reopen(
    *, dataset: Dataset, ranked: Iterator[tuple[int, int, float, bool]], limit: int, now: datetime
) -> tuple[list[tuple[int, float, bool]], int, int]:
    """Reopen the first `limit` candidates (item id, scored label id, quality, flagged) still as scored.

    Precondition: inside the transaction. Returns (reopened, skipped, imported labels among them).
    Only as many rows as are still wanted are locked at a time, in id order (lock order: item rows,
    then the chain head); a candidate that changed is passed over for the next worst.
    """
    reopened: list[tuple[int, float, bool]] = []
    skipped = imported = 0
    while len(reopened) < limit:
        chunk = list(islice(ranked, min(_LOCK_CHUNK, limit - len(reopened))))
        if not chunk:
            break
        current = {
            pk: (label_id, origin)
            for pk, label_id, origin in Item.objects.select_for_update(of=("self",), no_key=True)
            .filter(dataset=dataset, pk__in=[pk for pk, *_ in chunk], queue_state=Item.QueueState.DONE)
            .order_by("pk")
            .values_list("pk", "gold_label__label_id", "gold_label__origin")
        }
        changed: list[tuple[int, float]] = []
        for pk, label_id, quality, flagged in chunk:
            if current.get(pk, (None, None))[0] != label_id:
                skipped += 1
                continue
            imported += current[pk][1] == GoldLabel.Origin.IMPORT
            reopened.append((pk, quality, flagged))
            changed.append((pk, quality))
        _items_reopen(changed, now)
    return reopened, skipped, imported


def label_issues_reopen(*, dataset_id: int, user: AbstractBaseUser | None, limit: int) -> LabelIssuesReopened:
    """Score the dataset's done gold labels and reopen the `limit` likeliest errors for re-review.

    Precondition: the caller has checked that `user` is a model admin of the
    dataset (None: run by an operator from the command line). Raises
    ValidationError, changing nothing, for a limit outside 1..10,000 or labels
    that cannot be scored (a class with fewer gold labels than folds, one class
    only, no usable feature). Raises Dataset.DoesNotExist for an unknown dataset.
    """
    limit = limit_check(limit)
    dataset = Dataset.objects.get(pk=dataset_id)
    golds = list(
        _done_gold(dataset).order_by("item_id").values_list("item_id", "label_id", "item__content_hash", "label__name")
    )
    if not golds:
        raise ValidationError("The dataset has no reviewed items with gold labels to check.")
    scores = _scores(dataset, golds, seed=dataset.pk)
    ranked = (
        (golds[i][0], golds[i][1], round(float(scores.quality[i]), 6), bool(scores.is_issue[i]))
        for i in scores.worst_first()
    )
    now = timezone.now()
    with transaction.atomic():
        reopened, skipped, imported = _reopen(dataset=dataset, ranked=ranked, limit=limit, now=now)
        n = len(reopened)
        counts_add(
            dataset_id=dataset.pk,
            deltas={
                f"{STATE}{Item.QueueState.DONE}": -n,
                f"{STATE}{Item.QueueState.OPEN}": n,
                LABELLED_AT_IMPORT: -imported,
            },
        )
        audit_record(
            actor=user,
            actor_username="" if user is not None else "manage.py label_issues_reopen",
            action="label_issues.reopened",
            obj=dataset,
            dataset_id=dataset.pk,
            after={
                "reopened": n,
                "limit": limit,
                "item_ids": [pk for pk, _, _ in reopened],
                "label_quality": [quality for _, quality, _ in reopened],
                "flagged_by_cleanlab": [flagged for _, _, flagged in reopened],
                "review_round_started_at": now,
                "scored": len(golds),
                "flagged_total": int(scores.is_issue.sum()),
                "skipped_changed_meanwhile": skipped,
                "classes": scores.classes,
                "folds": scores.folds,
                "seed": dataset.pk,
                "method": METHOD,
                "pipeline": baseline.ALGORITHM,
                "labels_hash": labels_hash((pk, content, label) for pk, _, content, label in golds),
            },
            reason=f"Re-review of the {n} gold labels likeliest wrong (confident learning)",
        )
    logger.info("Dataset %s: reopened %s of %s gold labels for re-review.", dataset.pk, n, len(golds))
    return LabelIssuesReopened(
        scored=len(golds),
        flagged=int(scores.is_issue.sum()),
        reopened=[(pk, quality) for pk, quality, _ in reopened],
        skipped=skipped,
    )


def label_issues_dispatch(*, dataset_id: int, user_id: int, limit: int) -> bool:
    """Hand the job to a worker; False when the broker cannot be reached (never run inside the request)."""
    from models_app import tasks

    try:
        tasks.label_issues_reopen.apply_async(args=[dataset_id, user_id, limit], retry=False)
    except Exception:  # noqa: BLE001 - kombu raises several kinds of connection errors; all mean "try later"
        logger.warning("Dataset %s: could not queue the label-issue job.", dataset_id, exc_info=True)
        return False
    return True
