"""Run a model version over items and record its predictions.

When the version is the champion, its prediction is also copied onto each
open item (label, confidence, queue priority, and the per-feature explanation
the card shows), which is what the review queue and the review card read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from annotations.models import Item, LabelClass, QueueStrategy
from annotations.queue_scores import PROBABILITY_STRATEGIES, priorities_from_scores, strategy_scores
from governance.audit import audit_record
from models_app.data import frame_for_items
from models_app.model_runtime import LoadedModel, model_load
from models_app.models import ModelVersion, Prediction
from models_app.prediction_integrity import prediction_bypass_possible, prediction_references_check
from models_app.prediction_writers import chunks_written, prediction_run_lock, prediction_writers
from workflow_site.deferred_checks import deferred_checks_run_now
from workflow_site.row_triggers import row_triggers_skipped

CHUNK = 5000
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ChunkPredictions:
    """One chunk's predictions as arrays, in item-id order."""

    item_ids: list[int]
    label_ids: np.ndarray
    confidences: np.ndarray
    probabilities_json: list[str]
    # Only for the champion (what reviewers see): one JSON text per item, or None (models_app/explanations.py).
    explanations_json: list[str | None] | None = None
    # Only for the champion: each item's queue priority under the dataset's strategy (annotations/queue_scores.py),
    # or None when that strategy's score does not come from these probabilities.
    priorities: list[float] | None = None
    # On PostgreSQL: each prediction row as a line of COPY text, built here on the prefetch thread so
    # that the writing connection only sends them (`_predictions_insert`).
    copy_lines: list[str] | None = None


def _priorities(strategy: str, proba: np.ndarray) -> list[float] | None:
    scores = strategy_scores(strategy, proba)
    return None if scores is None else priorities_from_scores(scores).tolist()


def _probabilities_template(classes: list[str]) -> str:
    """A %-format for one row's probabilities as JSON: the text json.dumps would give for {class: round(p, 6)}."""
    # A class name's own '%' must not be read as a format.
    return "{" + ", ".join(f"{json.dumps(name).replace('%', '%%')}: %.6f" for name in classes) + "}"


def _copy_text(text: str) -> str:
    """`text` as a field of COPY's text format (a JSON text holds no raw tab or newline, only backslashes)."""
    return text.replace("\\", "\\\\")


def _chunk_predict(
    model: LoadedModel,
    item_ids: list[int],
    frame: pd.DataFrame,
    classes: list[str],
    label_ids: list[int],
    *,
    explain: bool,
    strategy: str = QueueStrategy.LEAST_CONFIDENCE,
    copy_prefix: str | None = None,
) -> _ChunkPredictions:
    """The model's work on one chunk: arrays and texts only, no database (it runs on the prefetch thread).

    `copy_prefix`, on PostgreSQL, is the model version's id as COPY text: then each
    prediction row is also made ready as a line of COPY text.
    """
    if explain:  # both from one pass over the inputs (for text models the vectoriser is most of the cost)
        proba, explanations = model.predict_with_explanations(frame, classes)
    else:
        proba, explanations = model.predict_proba(frame, classes), None
    best = proba.argmax(axis=1)
    # One JSON object per row from a format string, without a dict per row.
    template = _probabilities_template(classes)
    probabilities_json = [template % tuple(row) for row in proba.tolist()]
    chosen_labels = np.asarray(label_ids)[best]
    confidences = proba[np.arange(len(item_ids)), best]
    copy_lines = None
    if copy_prefix is not None:
        created_at = timezone.now().isoformat()
        copy_lines = [
            f"{item_id}\t{copy_prefix}\t{label}\t{confidence!r}\t{_copy_text(text)}\t{created_at}\n"
            for item_id, label, confidence, text in zip(
                item_ids, chosen_labels.tolist(), confidences.tolist(), probabilities_json, strict=True
            )
        ]
    return _ChunkPredictions(
        item_ids=item_ids,
        label_ids=chosen_labels,
        confidences=confidences,
        probabilities_json=probabilities_json,
        explanations_json=explanations,
        priorities=_priorities(strategy, proba) if explain else None,
        copy_lines=copy_lines,
    )


def _chunks_predicted(
    model: LoadedModel, chunks: list[list[int]], predict: Callable[..., _ChunkPredictions]
) -> Iterator[_ChunkPredictions]:
    """Each chunk's predictions, in order; chunk k+1 is read and predicted while the caller writes chunk k.

    Writing a chunk is mostly the database's time (the item UPDATE and its index
    entries), predicting it mostly this process's (the model, the explanations,
    the JSON texts): on two threads the two overlap, and a refresh takes about
    as long as the longer of the two instead of their sum.

    Reading a chunk's features is the database's time too. On PostgreSQL, when the
    caller is not inside a transaction, the prefetch thread reads them on its own
    connection, so that the reads overlap the writes as well (a fifth of a million
    items' refresh). Inside a transaction every read stays on the caller's
    connection: only it sees the caller's uncommitted rows.
    """
    features = list(model.spec.features)
    read_ahead = connection.vendor == "postgresql" and not connection.in_atomic_block

    def read_and_predict(chunk: list[int]) -> _ChunkPredictions:
        return predict(chunk, frame_for_items(chunk, features))

    def submit(worker: ThreadPoolExecutor, chunk: list[int]) -> Future[_ChunkPredictions]:
        if read_ahead:
            return worker.submit(read_and_predict, chunk)
        return worker.submit(predict, chunk, frame_for_items(chunk, features))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict") as worker:
        try:
            ahead = submit(worker, chunks[0]) if chunks else None
            for position in range(len(chunks)):
                assert ahead is not None
                predicted = ahead.result()
                if position + 1 < len(chunks):
                    ahead = submit(worker, chunks[position + 1])
                yield predicted
        finally:
            if read_ahead:  # the thread's own connection (Django's are per thread) ends with it
                worker.submit(connections.close_all).result()


def predictions_create(*, model_version: ModelVersion, item_ids: list[int], update_items: bool) -> int:
    """Predict `item_ids` with `model_version`; returns how many predictions were written.

    Idempotent: an item that already has a prediction from this version keeps it.
    Works in chunks of CHUNK items: the model runs on a column-wise frame, and
    each chunk is one short transaction that inserts its predictions in bulk
    (COPY on PostgreSQL), copies them onto the open items with one set-based
    UPDATE (when this version is the champion) and writes one audit event.
    The next chunk is predicted while this one is written (`_chunks_predicted`),
    and outside a transaction on PostgreSQL several chunks are written at once,
    each on its own connection (models_app/prediction_writers.py).
    """
    if not item_ids:
        return 0
    model = model_load(model_version)
    dataset = model_version.dataset
    classes = list(model_version.class_names)
    label_by_name = dict(LabelClass.objects.filter(dataset=dataset).values_list("name", "pk"))
    label_ids = [label_by_name[name] for name in classes]
    ordered = sorted(item_ids)
    chunks = [ordered[start : start + CHUNK] for start in range(0, len(ordered), CHUNK)]
    explain = update_items  # the explanations are for reviewers: only the champion's are shown

    copy_prefix = str(model_version.pk) if connection.vendor == "postgresql" else None

    def predict(chunk: list[int], frame: pd.DataFrame) -> _ChunkPredictions:
        return _chunk_predict(
            model,
            chunk,
            frame,
            classes,
            label_ids,
            explain=explain,
            strategy=dataset.queue_strategy,
            copy_prefix=copy_prefix,
        )

    # Where the role allows, each chunk's keys are checked set-based instead of per row (prediction_integrity.py).
    skip_row_triggers = prediction_bypass_possible()
    shown = [update_items]  # turned off for good once a promotion took the champion's place

    def write(predicted: _ChunkPredictions) -> int:
        with transaction.atomic():
            # A promotion waits for this chunk's end (its UPDATE of the version conflicts with FOR SHARE), so the
            # stage read below holds for the whole chunk. SHARE, not UPDATE: a run's writers share it. Model
            # version rows come before item rows in the lock order (README, "Lock order").
            _model_version_share_lock(model_version.pk)
            if shown[0]:
                # Only the champion's predictions are shown to reviewers; if a
                # promotion happened while this ran, stop copying (the new
                # champion's own task takes over).
                shown[0] = ModelVersion.objects.filter(pk=model_version.pk, stage=ModelVersion.Stage.CHAMPION).exists()
            update = shown[0]
            updated: list[int] = []
            with row_triggers_skipped(skip_row_triggers):
                inserted = _predictions_insert(model_version, predicted)
                if update:
                    updated = _copy_onto_items(model_version, predicted, strategy=dataset.queue_strategy)
            if skip_row_triggers:  # what the skipped foreign-key triggers would have checked (prediction_integrity.py)
                prediction_references_check(
                    model_version_id=model_version.pk,
                    label_ids={int(label) for label in predicted.label_ids.tolist()},
                    inserted_item_ids=inserted,
                    updated_item_ids=updated,
                )
            deferred_checks_run_now()  # before the audit event takes the chain head (workflow_site/deferred_checks.py)
            audit_record(
                actor=None,
                action="predictions.created",
                obj=model_version,
                object_type="model_version",
                dataset_id=dataset.pk,
                after={
                    "model_version": model_version.version,
                    "items": len(predicted.item_ids),
                    "new_predictions": len(inserted),
                    "shown_to_reviewers": update,
                },
            )
            return len(inserted)

    writers = prediction_writers(len(chunks))
    # Two predictors of one version (a champion's refresh task racing a direct call, or two deliveries of the
    # task) take turns: the second then reads the first's rows as existing (models_app/prediction_writers.py).
    # closing(): a refresh that stops early ends the prefetch thread and its connection now, not when the
    # generator is collected (an exception's traceback keeps it alive).
    with prediction_run_lock(model_version.pk), closing(_chunks_predicted(model, chunks, predict)) as predicted:
        return chunks_written(predicted, write, writers=writers)


def _model_version_share_lock(model_version_id: int) -> None:
    """FOR SHARE on the version's row (Django's select_for_update has no SHARE mode; SQLite locks no rows)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {ModelVersion._meta.db_table} WHERE id = %s FOR SHARE", [model_version_id])


# Between the explanation texts sent to PostgreSQL: a control character, which JSON text never holds unescaped.
_SEPARATOR = "\x1e"

_PREDICTION_COLUMNS = ("item_id", "model_version_id", "label_id", "confidence", "probabilities", "created_at")


def _predictions_insert(model_version: ModelVersion, predicted: _ChunkPredictions) -> list[int]:
    """Insert the chunk's predictions that this version does not have yet; returns their items' ids.

    Precondition: inside the chunk's transaction. Two refreshes of the same
    version racing on one chunk: the unique (item, model_version) constraint
    makes the second fail and roll back its chunk, never write a duplicate.
    """
    # The chunk's ids are sorted: read the version's predictions in their id range (an
    # index range scan) rather than through an IN list of thousands of parameters.
    existing = set(
        Prediction.objects.filter(
            model_version=model_version, item_id__gte=predicted.item_ids[0], item_id__lte=predicted.item_ids[-1]
        ).values_list("item_id", flat=True)
    )
    table, columns = Prediction._meta.db_table, ", ".join(_PREDICTION_COLUMNS)
    if predicted.copy_lines is not None:  # PostgreSQL: COPY, the fastest way in, of lines the prefetch thread made
        new = [(item_id, line) for item_id, line in zip(predicted.item_ids, predicted.copy_lines, strict=True)]
        new = [(item_id, line) for item_id, line in new if item_id not in existing]
        if new:
            with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write("".join(line for _, line in new))
        return [item_id for item_id, _ in new]
    now = timezone.now()
    rows = [
        (item_id, model_version.pk, int(label_id), float(confidence), probabilities, now)
        for item_id, label_id, confidence, probabilities in zip(
            predicted.item_ids, predicted.label_ids, predicted.confidences, predicted.probabilities_json, strict=True
        )
        if item_id not in existing
    ]
    if rows:
        placeholders = ", ".join(["%s"] * len(_PREDICTION_COLUMNS))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
    return [row[0] for row in rows]


def _priority_sql(strategy: str, priority: str) -> tuple[str, str]:
    """SQL for (queue_priority, priority_strategy) of an item under `strategy`; `priority` is the computed column.

    Probability strategies take the chunk's computed priority; disagreement reads
    the item's own score (written when a candidate predicts); a label-issue
    priority is set only by the job that reopens gold labels, so a new
    prediction leaves it as it is.
    """
    if strategy in PROBABILITY_STRATEGIES:
        return priority, f"'{strategy}'"
    if strategy == QueueStrategy.DISAGREEMENT:
        return (
            "1.0 - item.disagreement_score",
            f"CASE WHEN item.disagreement_score IS NULL THEN '' ELSE '{strategy}' END",
        )
    return "item.queue_priority", "item.priority_strategy"


def _array_literal(values: list[int] | list[float] | list[None]) -> str:
    """A PostgreSQL array literal ('{1,2,NULL}') of numbers: psycopg adapts a list element by element in
    Python, which cost a refresh of a million items 4 s on the writing thread."""
    return "{" + ",".join("NULL" if value is None else repr(value) for value in values) + "}"


def _copy_onto_items(model_version: ModelVersion, predicted: _ChunkPredictions, *, strategy: str) -> list[int]:
    """Show this version's predictions, and their explanations, on the chunk's open items: one UPDATE … FROM.
    Returns the ids of the items it changed.

    The queue priority under the dataset's strategy is written in the same statement.

    The item ids are sorted; the id range bounds the scan on both tables (PostgreSQL
    does not carry a range across the join's equality: with the bound on the items
    alone, each chunk read every earlier prediction of the version, and a million
    items took quadratic time), the join picks exactly
    the items this version predicted, and only open items change (one that was
    answered meanwhile keeps what its reviewer saw). The explanations travel in
    the same statement: on PostgreSQL as one text split by the server
    (string_to_array), because psycopg adapts a text[] of thousands of JSON
    texts element by element, which cost more than the UPDATE itself (37 s per
    100,000 items against 3 s); on SQLite as one JSON array, which must drive
    the join (CROSS JOIN fixes SQLite's order): left to itself the planner
    walked every prediction of the version and scanned the array for each,
    and 100,000 items did not finish in 15 minutes.
    """
    item_ids = predicted.item_ids
    explanations = predicted.explanations_json or [None] * len(item_ids)
    priorities = predicted.priorities or [None] * len(item_ids)
    item_table, prediction_table = Item._meta.db_table, Prediction._meta.db_table
    if connection.vendor == "postgresql":
        source = (
            f"{prediction_table} AS p, unnest(%s::bigint[], string_to_array(%s, chr({ord(_SEPARATOR)})), %s::float8[])"
            " AS e(item_id, explanation, priority)"
        )
        item_id, explanation, priority = "e.item_id", "NULLIF(e.explanation, '')::jsonb", "e.priority"  # '': none
        source_params: list[object] = [
            _array_literal(item_ids),
            _SEPARATOR.join(text or "" for text in explanations),
            _array_literal(priorities),
        ]
    else:
        # e.value is [item id, explanation text, priority]; then item by rowid, then p by (item, version).
        source = f"json_each(%s) AS e CROSS JOIN {prediction_table} AS p"
        item_id, explanation = "json_extract(e.value, '$[0]')", "json_extract(e.value, '$[1]')"
        priority = "json_extract(e.value, '$[2]')"
        source_params = [json.dumps([list(row) for row in zip(item_ids, explanations, priorities, strict=True)])]
    queue_priority, priority_strategy = _priority_sql(strategy, priority)
    # SQLite's RETURNING names only the updated table's own columns, unqualified (an alias is "no such column").
    returning = "item.id" if connection.vendor == "postgresql" else "id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {item_table} AS item SET
                prediction_id = p.id,
                predicted_label_id = p.label_id,
                predicted_confidence = p.confidence,
                predicted_probabilities = p.probabilities,
                predicted_by_version = %s,
                queue_priority = {queue_priority},
                priority_strategy = {priority_strategy},
                prediction_explanation = {explanation}
            FROM {source}
            WHERE p.model_version_id = %s
              AND p.item_id BETWEEN %s AND %s
              AND p.item_id = item.id
              AND {item_id} = item.id
              AND item.id BETWEEN %s AND %s
              AND item.queue_state = %s
            RETURNING {returning}
            """,
            [
                model_version.version,
                *source_params,
                model_version.pk,
                item_ids[0],
                item_ids[-1],
                item_ids[0],
                item_ids[-1],
                Item.QueueState.OPEN,
            ],
        )
        return [item_id for (item_id,) in cursor.fetchall()]


def predictions_refresh(*, dataset_id: int, model_version_id: int | None = None, batch_id: int | None = None) -> int:
    """The champion predicts the open items (of one import, or all) that do not show its prediction yet.

    Does nothing when the champion changed since the refresh was asked for
    (`model_version_id`): the new champion's own refresh takes over.
    """
    champion = ModelVersion.objects.filter(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    if champion is None or (model_version_id is not None and champion.pk != model_version_id):
        logger.info("Dataset %s: champion changed or missing; no predictions refresh.", dataset_id)
        return 0
    item_ids = open_item_ids(dataset_id, batch_id, stale_for_version=champion.version)
    written = predictions_create(model_version=champion, item_ids=item_ids, update_items=True)
    if item_ids:
        # The shadow (if any) predicts the same items, unseen, and their disagreement scores follow the champion.
        from models_app.shadow import shadow_predictions_refresh

        shadow_predictions_refresh(dataset_id=dataset_id, item_ids=item_ids)
    return written


def open_item_ids(dataset_id: int, batch_id: int | None = None, stale_for_version: int | None = None) -> list[int]:
    """Open items of a dataset (or of one import), optionally only those not showing `stale_for_version`."""
    # Not items whose data retention removed (annotations/retention.py): nothing left to predict from.
    queryset = Item.objects.filter(dataset_id=dataset_id, queue_state=Item.QueueState.OPEN, purged_at__isnull=True)
    if batch_id is not None:
        queryset = queryset.filter(batch_id=batch_id)
    if stale_for_version is not None:
        queryset = queryset.filter(Q(predicted_by_version__isnull=True) | ~Q(predicted_by_version=stale_for_version))
    return list(queryset.order_by("pk").values_list("pk", flat=True))
