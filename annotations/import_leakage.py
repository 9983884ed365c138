"""No leakage at import (issue 9, point 6): the holdout and the review pool never share a row.

A holdout row re-imported under a new id used to become a trainable gold label:
the duplicate check was by id. Each row now carries a hash of its feature
values alone (Item.feature_hash, annotations/feature_hash.py), and an import
compares it with the dataset's items:

- **Across holdout and pool: refused.** A review-pool row whose feature hash
  is already in the holdout, or a holdout row whose hash is already in the pool,
  is a row-level error naming the line, the existing item's id and its set; the
  import stays all or nothing. On PostgreSQL the check runs again under the
  dataset row lock at the publish (`cross_set_exists`), where every import of the
  dataset publishes one at a time, so two imports racing each other cannot both
  get in.
- **Within one set: allowed, with a warning.** A row equal to an item of its
  own set (a re-sent pool row, a holdout row twice), or to another row of the
  same file, is imported and the batch report says so. Decided so because such
  rows are common and harmless for leakage (the same patient seen twice in the
  pool trains on nothing the holdout holds); they only weigh twice, which the
  analyst should know but may well intend. A file is one purpose, so two rows
  of one file never cross holdout and pool.
- **Near-duplicates: a warning** (`NearDuplicates`): a pool row whose numeric
  features are within NEAR_DUPLICATE_RMS standard deviations (root mean square
  over the numeric features) of a holdout row.

These checks run once the file's cells are clean, like the id checks: a file
with bad cells is refused for those first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection

from annotations.import_validation import CheckedChunk, FeatureRule, ParseResult, RowError
from annotations.models import ImportBatch, ImportStagedRow, Item

# The batch report lists this many warnings (and counts them all).
MAX_REPORTED_WARNINGS = 100
# Near: the root mean square of the standardised differences over the numeric features is at most this,
# i.e. a hundredth of a standard deviation per feature on average. Two different records are far further
# apart: in scikit-learn's breast-cancer set (569 x 30) the closest two distinct rows are 0.18 apart by
# this measure, in its digits set (1797 x 64) 0.12, so a row this close is almost surely the same record
# re-typed, rounded or converted. With few numeric features (3 or fewer) chance neighbours get that close
# in a large holdout; the warnings are then noise, which is why they are capped and never refuse a file.
NEAR_DUPLICATE_RMS = 0.01
# The holdout held in memory for the near-duplicate check (about 24 MB at 30 features); a larger holdout
# skips the check, with a warning saying so, rather than grow the worker without bound.
NEAR_HOLDOUT_MAX_ROWS = 100_000
_NUMERIC = ("float", "integer")
# Matching a batch from the other batches' side names them in an IN list; past this many (a dataset fed by
# thousands of small imports) the probe per hash is used, as for a batch smaller than the others.
MAX_OTHER_BATCHES = 1_000
_HOLDOUT = Item.QueueState.HOLDOUT


@dataclass
class ImportWarnings:
    """What an import reports without refusing the file: the first MAX_REPORTED_WARNINGS, and a count."""

    shown: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, line: int | None, column: str, value: Any, reason: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED_WARNINGS:
            self.shown.append(RowError(line, column, "" if value is None else str(value)[:200], reason))

    def as_report(self) -> dict[str, Any]:
        return {"warnings": [warning.as_dict() for warning in self.shown], "warning_count": self.count}


def _set_name(holdout: bool) -> str:
    return "the sequestered holdout" if holdout else "the review pool"


@dataclass(frozen=True)
class _Rows:
    """Where an import's rows are: staged (the staging path) or already items in the writer's transaction."""

    table: str
    line: str
    external_id: str
    is_items: bool


def _rows(source: str) -> _Rows:
    q = connection.ops.quote_name
    if source == "staged":
        meta = ImportStagedRow._meta
        return _Rows(q(meta.db_table), q(meta.get_field("line").column), q("external_id"), False)
    meta = Item._meta
    return _Rows(q(meta.db_table), q(meta.get_field("source_row").column), q("external_id"), True)


def _matches(
    *, source: str, batch_id: int, dataset_id: int, other_set: bool, holdout: bool, rows_total: int = 0
) -> list[tuple]:
    """(line, id, existing item's id) for each row whose feature hash an item of the dataset has, in the
    other set (`other_set`) or its own; one existing item per line (the first the index gives), in line order.

    A correlated subquery per distinct hash of the batch's rows, so each is one probe of item_feature_hash
    whatever the planner believes: as a JOIN, SQLite walked every holdout item (item_list_state) for each
    imported row (100,000 x 10,000: minutes), and PostgreSQL, planning with the statistics of a table not yet
    analysed, chose a nested loop over the dataset's items. Per distinct hash, not per row: on the direct
    path the batch's own rows are in the index too, and a probe for a hash no other batch has walks all of
    them before it gives up, so rows that repeat made the check quadratic (20,000 rows of 20 distinct values:
    4.1 s; 100,000 would have taken over a minute). The pool's state is tested on what the hash found
    (`|| ''` keeps it from being looked up by an index of its own), and MIN(external_id) is not asked
    for: both databases answered it by walking the dataset's ids in order. On the direct path a batch larger
    than all the dataset's other batches together is matched the other way round (`_matches_from_the_others`).
    """
    rows, item = _rows(source), Item._meta
    q = connection.ops.quote_name
    in_holdout = holdout != other_set  # the existing items' set
    # The holdout is probed by its own partial index (item_holdout_feature_hash), which the condition must
    # name as written (a literal: SQLite uses a partial index only for a constant). The pool is most of
    # the dataset, so the first item item_feature_hash finds is nearly always one.
    state = f"i.{q('queue_state')} = '{_HOLDOUT}'" if in_holdout else f"i.{q('queue_state')} || '' <> '{_HOLDOUT}'"
    if rows.is_items:
        others = _other_batches(dataset_id=dataset_id, batch_id=batch_id)
        if len(others) <= MAX_OTHER_BATCHES and sum(others.values()) < rows_total:
            return _matches_from_the_others(
                rows=rows, batch_id=batch_id, dataset_id=dataset_id, state=state, other_batch_ids=list(others)
            )
    not_mine = f" AND i.{q(item.get_field('batch').column)} <> %s" if rows.is_items else ""
    hash_column = q("feature_hash")
    probe = (
        f"SELECT i.{q('external_id')} FROM {q(item.db_table)} i WHERE i.{q('dataset_id')} = %s "
        f"AND i.{hash_column} = h.hash AND {state}{not_mine} LIMIT 1"
    )
    found = (
        f"SELECT h.hash, ({probe}) AS existing FROM "
        f"(SELECT DISTINCT {hash_column} AS hash FROM {rows.table} WHERE {q('batch_id')} = %s) h"
    )
    # MATERIALIZED (PostgreSQL 12+, SQLite 3.35+): inlined, PostgreSQL evaluated the probe again for every
    # joined row, as many probes as rows once more.
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH f AS MATERIALIZED ({found}) SELECT n.{rows.line}, n.{rows.external_id}, f.existing FROM f "
            f"JOIN {rows.table} n ON n.{hash_column} = f.hash "
            f"WHERE f.existing IS NOT NULL AND n.{q('batch_id')} = %s ORDER BY n.{rows.line}",
            [dataset_id, *([batch_id] if rows.is_items else []), batch_id, batch_id],
        )
        return cursor.fetchall()


def _batch_matches(*, source: str, batch: ImportBatch, other_set: bool) -> list[tuple]:
    """`_matches` for an import batch's rows."""
    holdout = batch.purpose == ImportBatch.Purpose.HOLDOUT
    return _matches(
        source=source,
        batch_id=batch.pk,
        dataset_id=batch.dataset_id,
        other_set=other_set,
        holdout=holdout,
        rows_total=batch.rows_total,
    )


def _other_batches(*, dataset_id: int, batch_id: int) -> dict[int, int]:
    """The dataset's other import batches and the rows each imported (the batches table is small)."""
    batches = ImportBatch.objects.filter(dataset_id=dataset_id).exclude(pk=batch_id)
    return dict(batches.values_list("pk", "rows_imported"))


def _matches_from_the_others(
    *, rows: _Rows, batch_id: int, dataset_id: int, state: str, other_batch_ids: list[int]
) -> list[tuple]:
    """`_matches` the other way round, for a batch larger than all the dataset's other batches together: their
    items' distinct hashes first (by batch, item_batch_id), each then found among this batch's rows (by hash,
    item_feature_hash). The probe per hash of the batch walks, for a hash no other batch has, all of this
    batch's rows with it before giving up: for a million-row file whose rows repeat their values (few
    distinct hashes, many rows each), that was 5 of the import's 28 s. This way the cost is the other
    batches' rows plus the matches. The existing item named for a line is the oldest with the hash.
    Precondition: the batch's rows are items (the direct path)."""
    if not other_batch_ids:
        return []
    q = connection.ops.quote_name
    item_table, hash_column = q(Item._meta.db_table), q("feature_hash")
    batch_column = q(Item._meta.get_field("batch").column)
    in_batches = ", ".join(["%s"] * len(other_batch_ids))
    first = (
        f"SELECT i.{hash_column} AS hash, MIN(i.{q('id')}) AS first_id FROM {item_table} i "
        f"WHERE i.{q('dataset_id')} = %s AND i.{batch_column} IN ({in_batches}) AND {state} GROUP BY i.{hash_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH f AS MATERIALIZED ({first}) SELECT n.{rows.line}, n.{rows.external_id}, e.{q('external_id')} "
            f"FROM f JOIN {item_table} e ON e.{q('id')} = f.first_id "
            f"JOIN {item_table} n ON n.{q('dataset_id')} = %s AND n.{hash_column} = f.hash AND n.{batch_column} = %s "
            f"ORDER BY n.{rows.line}",
            [dataset_id, *other_batch_ids, dataset_id, batch_id],
        )
        return cursor.fetchall()


def _set_has_items(*, dataset_id: int, holdout: bool) -> bool:
    """Whether the dataset has items in the holdout (or the pool): an index probe (item_list_state) that
    spares the join when the other set is empty, as in most imports."""
    items = Item.objects.filter(dataset_id=dataset_id)
    items = items.filter(queue_state=_HOLDOUT) if holdout else items.exclude(queue_state=_HOLDOUT)
    return items.exists()


def cross_set_exists(*, source: str, batch: ImportBatch) -> bool:
    """Whether any row of the batch has the feature values of an item in the other set (the recheck under
    the dataset lock; the first check, `leakage_check`, named the lines)."""
    holdout = batch.purpose == ImportBatch.Purpose.HOLDOUT
    if not _set_has_items(dataset_id=batch.dataset_id, holdout=not holdout):
        return False
    return bool(_batch_matches(source=source, batch=batch, other_set=True))


def leakage_check(
    *,
    source: str,
    batch: ImportBatch,
    result: ParseResult,
    warnings: ImportWarnings,
    in_file: FileDuplicates | None = None,
) -> None:
    """Rows across holdout and pool go to `result` as errors; equal feature values within a set to `warnings`.

    `source`: "staged" (the staging table) or "items" (the direct writer's
    rows, read inside its transaction). Set-based SQL, index-backed on the
    items' side (item_feature_hash); each part is skipped when the set it
    compares with is empty. `in_file`: the rows' hashes as they were read, for
    the equal rows within the file.
    """
    holdout = batch.purpose == ImportBatch.Purpose.HOLDOUT
    dataset_id = batch.dataset_id
    mine, other = _set_name(holdout), _set_name(not holdout)
    if _set_has_items(dataset_id=dataset_id, holdout=not holdout):
        for line, external_id, existing in _batch_matches(source=source, batch=batch, other_set=True):
            result.add(
                line,
                "external_id",
                external_id,
                f"Leakage: the row's feature values are those of item {existing}, which is in {other}; "
                f"a row cannot be in both the holdout and the review pool.",
            )
    if not result.ok:
        return
    # Another imported batch of the same purpose (the batches table is small; the items of this set
    # include this batch's own on the direct path, which an EXISTS over items would walk first).
    same_set = ImportBatch.objects.filter(
        dataset_id=dataset_id, purpose=batch.purpose, status=ImportBatch.Status.IMPORTED
    )
    if same_set.exclude(pk=batch.pk).exists():
        for line, external_id, existing in _batch_matches(source=source, batch=batch, other_set=False):
            warnings.add(
                line,
                "external_id",
                external_id,
                f"Exact duplicate: the row's feature values are those of item {existing}, already in {mine} "
                "(imported; it will count twice).",
            )
    if in_file is not None:
        in_file.report(source=source, batch_id=batch.pk, warnings=warnings)


class FileDuplicates:
    """Rows of one file with equal feature values, found in memory: 16 bytes a row (the hash's first 64 bits
    and the line), sorted once at the end. The same query in SQL (GROUP BY the hash over the batch's rows)
    took 1.2 s for 100,000 rows on PostgreSQL, and added 0.5 s to SQLite's id checks; this takes
    milliseconds. Two different rows share 64 bits of sha256 with odds of about n^2 / 2^65 (3e-8 for a
    million rows), and the result is only a warning."""

    def __init__(self) -> None:
        self._keys: list[np.ndarray] = []
        self._lines: list[np.ndarray] = []

    def reset(self) -> None:
        self._keys.clear()
        self._lines.clear()

    def see(self, lines: list[int], feature_hashes: list[str]) -> None:
        self._keys.append(np.array([int(h[:16], 16) for h in feature_hashes], dtype=np.uint64))
        self._lines.append(np.array(lines, dtype=np.int64))

    def report(self, *, source: str, batch_id: int, warnings: ImportWarnings) -> None:
        if not self._keys:
            return
        keys, lines = np.concatenate(self._keys), np.concatenate(self._lines)
        order = np.lexsort((lines, keys))
        keys, lines = keys[order], lines[order]
        repeat = np.zeros(len(keys), dtype=bool)
        repeat[1:] = keys[1:] == keys[:-1]
        if not repeat.any():
            return
        starts = np.where(repeat, 0, np.arange(len(keys)))
        first_lines = lines[np.maximum.accumulate(starts)]
        pairs = sorted(zip(lines[repeat].tolist(), first_lines[repeat].tolist(), strict=True))
        shown = [line for line, _ in pairs[:MAX_REPORTED_WARNINGS]]
        ids = _ids_at_lines(source=source, batch_id=batch_id, lines=shown)
        for line, first_line in pairs:
            warnings.add(
                line,
                "external_id",
                ids.get(line, ""),
                f"Exact duplicate: the row's feature values are those of line {first_line} of this file "
                "(both imported; they will count twice).",
            )


def _ids_at_lines(*, source: str, batch_id: int, lines: list[int]) -> dict[int, str]:
    if not lines:
        return {}
    rows = _rows(source)
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.line}, {rows.external_id} FROM {rows.table} "
            f"WHERE {q('batch_id')} = %s AND {rows.line} IN ({', '.join(['%s'] * len(lines))})",
            [batch_id, *lines],
        )
        return dict(cursor.fetchall())


class NearDuplicates:
    """Pool rows within NEAR_DUPLICATE_RMS of a holdout row, on the numeric features: warnings.

    The holdout's numeric features are standardised by the holdout's own means
    and standard deviations and put in a k-d tree (scikit-learn's KDTree, the
    tree NearestNeighbors(algorithm="kd_tree") builds); each staged chunk is a
    radius query that only counts (no array per row), and the few rows with a
    neighbour are asked again for it. The cost is the tree search: measured
    on the shared, loaded 2-core machine (figures vary 2x with the load),
    random data, 100,000 rows against a 10,000-row holdout: 0.2-0.6 s at 3
    features, 1.5-3.9 s at 30 (2.4-5.9 s against a 100,000-row holdout), the
    same as NearestNeighbors.radius_neighbors within the noise. At 30
    features that is the largest part of the leakage checks' cost. Only for
    review-pool imports into a dataset with a holdout, so most imports pay
    nothing.
    """

    def __init__(self, *, batch: ImportBatch, rules: list[FeatureRule], warnings: ImportWarnings) -> None:
        self.names = [rule.name for rule in rules if rule.dtype in _NUMERIC]
        self.dataset_id, self.warnings = batch.dataset_id, warnings
        self.active = batch.purpose == ImportBatch.Purpose.REVIEW and bool(self.names)
        self._tree: Any = None
        self._loaded = False
        self.seconds = 0.0  # loading the holdout and the searches, for the batch report's timings

    def reset(self) -> None:
        """Forget what was seen (the reader starts the file again); the holdout stays loaded."""
        self.warnings.shown.clear()
        self.warnings.count = 0

    def _load(self) -> None:
        self._loaded = True
        holdout = Item.objects.filter(dataset_id=self.dataset_id, queue_state=_HOLDOUT)
        size = holdout.count()
        if size == 0:
            self.active = False
            return
        if size > NEAR_HOLDOUT_MAX_ROWS:
            self.active = False
            self.warnings.add(
                None,
                "",
                "",
                f"Near-duplicates were not looked for: the holdout has {size:,} rows, more than the "
                f"{NEAR_HOLDOUT_MAX_ROWS:,} this check holds in memory.",
            )
            return
        from sklearn.neighbors import KDTree  # the worker only, and only when there is a holdout

        ids, matrix = [], np.empty((size, len(self.names)))
        for position, (external_id, values) in enumerate(
            holdout.order_by("pk").values_list("external_id", "values").iterator(chunk_size=5000)
        ):
            if position >= size:  # a holdout published meanwhile: the rest is for the next import's check
                break
            ids.append(external_id)
            matrix[position] = [values.get(name, math.nan) for name in self.names]
        matrix = matrix[: len(ids)]
        self.mean = np.nanmean(matrix, axis=0)
        scale = np.nanstd(matrix, axis=0)
        self.scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        standardised = np.nan_to_num((matrix - self.mean) / self.scale, nan=0.0)
        self.ids = ids
        self._tree = KDTree(standardised)
        self.radius = NEAR_DUPLICATE_RMS * math.sqrt(len(self.names))

    def see(self, chunk: CheckedChunk, line_in_source: Callable[[int], int]) -> None:
        if not self.active:
            return
        began = time.monotonic()
        try:
            self._search(chunk, line_in_source)
        finally:
            self.seconds += time.monotonic() - began

    def _search(self, chunk: CheckedChunk, line_in_source: Callable[[int], int]) -> None:
        if not self._loaded:
            self._load()
            if not self.active:
                return
        matrix = np.column_stack([np.asarray(chunk.columns[name], dtype=float) for name in self.names])
        standardised = np.nan_to_num((matrix - self.mean) / self.scale, nan=0.0)
        near = np.flatnonzero(self._tree.query_radius(standardised, self.radius, count_only=True))
        if not len(near):
            return
        neighbours, distances = self._tree.query_radius(
            standardised[near], self.radius, return_distance=True, sort_results=True
        )
        for position, found, distance in zip(near.tolist(), neighbours, distances, strict=True):
            rms = float(distance[0]) / math.sqrt(len(self.names))
            self.warnings.add(
                line_in_source(chunk.lines[position]),
                "external_id",
                chunk.ids[position],
                f"Near-duplicate: within {rms:.3f} standard deviations (root mean square over "
                f"{len(self.names)} numeric features) of holdout item {self.ids[found[0]]}.",
            )
