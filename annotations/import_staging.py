"""Writing checked rows into the staging table, column-wise, and the checks that need every row at once.

A chunk's rows arrive as columns (annotations/import_validation.py::CheckedChunk).
Each row needs its values as canonical JSON and a sha256 of its content
(`item_content_hash`); calling `json.dumps` per row was most of an import's
time (3.8 s of 16 for 100,000 rows x 30 features). Here each column is turned
into JSON tokens with one C-level `map`, and each row's JSON is one `%` format
over its tokens, so the per-row Python is a format, an encode and a hash.

The two checks that compare rows with each other or with the dataset (a
duplicate id in the file, an id the dataset already has) run as SQL over the
staged rows, so the worker never holds every id of a large file in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # what json.dumps(str) uses; C
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery

from annotations.import_validation import CheckedChunk, FeatureRule, ParseResult
from annotations.models import ImportStagedRow, Item

# The staging table's columns, in the order rows are written.
STAGED_COLUMNS = ("batch", "line", "external_id", "values", "observed_at", "label", "queue_state", "content_hash")


def _json_tokens(values: list[Any], dtype: str) -> list[str]:
    """Each value as json.dumps would write it (json.dumps uses float.__repr__ and int.__repr__)."""
    if dtype == "float":
        return list(map(float.__repr__, values))
    if dtype == "integer":
        return list(map(int.__repr__, values))
    if dtype == "boolean":
        return ["true" if value else "false" for value in values]
    if dtype == "text":
        return list(map(encode_basestring_ascii, values))
    memo: dict[str, str] = {}  # a category column holds a few distinct values
    return [memo.get(value) or memo.setdefault(value, encode_basestring_ascii(value)) for value in values]


def values_json(chunk: CheckedChunk, features: list[FeatureRule]) -> list[str]:
    """Each row's values as canonical JSON (sorted keys, no spaces): json.dumps(values, sort_keys=True, ...)."""
    if not features:
        return ["{}"] * len(chunk.lines)
    ordered = sorted(features, key=lambda rule: rule.name)
    template = "{" + ",".join(f"{encode_basestring_ascii(rule.name).replace('%', '%%')}:%s" for rule in ordered) + "}"
    tokens = [_json_tokens(chunk.columns[rule.name], rule.dtype) for rule in ordered]
    return [template % row for row in zip(*tokens, strict=True)]


def staged_rows(
    chunk: CheckedChunk,
    *,
    batch_id: int,
    features: list[FeatureRule],
    label_ids: dict[str, int],
    holdout: bool,
    line_in_source: Callable[[int], int],
    prepare_moment: Callable[[datetime | None], Any],
) -> list[list[Any]]:
    """The chunk's staging-table rows, in STAGED_COLUMNS order, with each row's content hash.

    The hash is item_content_hash's: sha256 of the canonical JSON of
    {external_id, label, observed_at (UTC ISO), values}, built around the
    values' JSON rather than dumped again.
    """
    label_json = {name: encode_basestring_ascii(name) for name in label_ids}
    open_state, done_state, holdout_state = Item.QueueState.OPEN, Item.QueueState.DONE, Item.QueueState.HOLDOUT
    rows = []
    for line, external_id, values, moment, label in zip(
        chunk.lines, chunk.ids, values_json(chunk, features), chunk.observed, chunk.labels, strict=True
    ):
        observed = encode_basestring_ascii(moment.astimezone(UTC).isoformat()) if moment else "null"
        payload = (
            f'{{"external_id":{encode_basestring_ascii(external_id)},"label":{label_json[label] if label else "null"},'
            f'"observed_at":{observed},"values":{values}}}'
        )
        rows.append(
            [
                batch_id,
                line_in_source(line),
                external_id,
                values,
                prepare_moment(moment),
                label_ids[label] if label else None,
                holdout_state if holdout else done_state if label else open_state,
                hashlib.sha256(payload.encode()).hexdigest(),
            ]
        )
    return rows


def staged_rows_write(rows: list[list[Any]]) -> None:
    """Insert staging rows inside the caller's transaction: COPY on PostgreSQL, executemany elsewhere."""
    q = connection.ops.quote_name
    table = q(ImportStagedRow._meta.db_table)
    columns = ", ".join(q(ImportStagedRow._meta.get_field(name).column) for name in STAGED_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as stream:
                for row in rows:
                    stream.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(STAGED_COLUMNS))})", rows
            )


def staged_duplicates(*, batch_id: int, result: ParseResult) -> None:
    """Report each staged row whose id an earlier line of the same file has: "Duplicate id: already on line N"."""
    staged = ImportStagedRow._meta
    q = connection.ops.quote_name

    def col(name: str) -> str:
        return q(staged.get_field(name).column)

    table, batch, line, external_id = q(staged.db_table), col("batch"), col("line"), col("external_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.{line}, s.{external_id}, d.first_line FROM {table} s JOIN ("
            f"SELECT {external_id} AS external_id, MIN({line}) AS first_line FROM {table} WHERE {batch} = %s "
            f"GROUP BY {external_id} HAVING COUNT(*) > 1) d ON d.external_id = s.{external_id} "
            f"WHERE s.{batch} = %s AND s.{line} > d.first_line ORDER BY s.{line}",
            [batch_id, batch_id],
        )
        for row_line, row_id, first_line in cursor.fetchall():
            result.add(row_line, "external_id", row_id, f"Duplicate id: already on line {first_line}.")


def clash_reason(file_name: str) -> str:
    return f"Id already exists in this dataset (imported from {file_name})."


def staged_clashes(*, batch_id: int, dataset_id: int, result: ParseResult) -> None:
    """Report each staged row whose id a committed item of the dataset already has (a read; in line order)."""
    earlier = Item.objects.filter(dataset_id=dataset_id, external_id=OuterRef("external_id"))
    clashing = (
        ImportStagedRow.objects.filter(batch_id=batch_id)
        .annotate(earlier_file=Subquery(earlier.values("batch__file_name")[:1]))
        .filter(earlier_file__isnull=False)
        .order_by("line")
    )
    for line, external_id, file_name in clashing.values_list("line", "external_id", "earlier_file"):
        result.add(line, "external_id", external_id, clash_reason(file_name))
