"""Writing checked rows into the staging table, column-wise, and the checks that need every row at once.

A chunk's rows arrive as columns (annotations/import_validation.py::CheckedChunk).
Each row needs its values as canonical JSON and a sha256 of its content
(`item_content_hash`); calling `json.dumps` per row was most of an import's
time (3.8 s of 16 for 100,000 rows x 30 features). Each column is turned into
JSON tokens and the tokens joined into each row's JSON and hashed payload with
pyarrow's string kernels (C++), so no Python string is made per cell: for
100,000 rows x 30 floats, 3.5 s of `float.__repr__` and 1.4 s of `%` formats
became about 1 s. A float is written as Python's repr writes it (what
json.dumps writes): pyarrow's shortest round-trip digits, with ".0" added to a
whole number, and Python's own repr for what pyarrow writes differently (an
exponent, or a magnitude under 1e-4 or from 1e16), so the hashes do not change.

The two checks that compare rows with each other or with the dataset (a
duplicate id in the file, an id the dataset already has) run as SQL over the
staged rows, so the worker never holds every id of a large file in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # what json.dumps(str) uses; C
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import connection
from django.db.models import OuterRef, Subquery

from annotations.import_validation import CheckedChunk, FeatureRule, ParseResult
from annotations.models import ImportStagedRow, Item

if TYPE_CHECKING:
    import pyarrow as pa

# The staging table's columns, in the order rows are written.
STAGED_COLUMNS = (
    *("batch", "line", "external_id", "values", "observed_at", "label", "queue_state", "content_hash"),
    "feature_hash",
)


def float_tokens(values: list[float]) -> pa.StringArray:
    """Each float as float.__repr__ writes it (json.dumps does), without a Python string per value."""
    import pyarrow as pa  # here, like the readers: the web process that imports this module never needs it
    import pyarrow.compute as pc

    numbers = pa.array(values, type=pa.float64())
    text = pc.cast(numbers, pa.string())
    magnitude = pc.abs(numbers)
    has_exponent, has_point = pc.match_substring(text, "e"), pc.match_substring(text, ".")
    below_1e16 = pc.less(magnitude, 1e16)
    # repr writes fixed notation from 1e-4 up to 1e16, where pyarrow's digits are the same...
    same = pc.and_(pc.and_(has_point, pc.invert(has_exponent)), pc.and_(pc.greater_equal(magnitude, 1e-4), below_1e16))
    # ...and a whole number below 1e16 as pyarrow does, plus ".0" (pyarrow: "12", "-0"; repr: "12.0", "-0.0").
    whole = pc.and_(pc.invert(pc.or_(has_point, has_exponent)), below_1e16)
    if pc.any(whole).as_py():
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    rest = np.flatnonzero(~pc.or_(same, whole).to_numpy(zero_copy_only=False))
    if len(rest):  # exponents, tiny and huge magnitudes: Python's own repr, for those cells only
        tokens = text.to_pylist()
        for position in rest.tolist():
            tokens[position] = float.__repr__(values[position])
        text = pa.array(tokens, type=pa.string())
    return text


def _json_tokens(values: list[Any], dtype: str) -> pa.StringArray:
    """Each value as json.dumps would write it (json.dumps uses float.__repr__ and int.__repr__)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if dtype == "float":
        return float_tokens(values)
    if dtype == "integer":
        try:
            return pc.cast(pa.array(values, type=pa.int64()), pa.string())  # digits, as int.__repr__
        except (pa.ArrowInvalid, OverflowError):  # beyond 64 bits: Python's
            return pa.array(list(map(int.__repr__, values)), type=pa.string())
    if dtype == "boolean":
        return pa.array(["true" if value else "false" for value in values], type=pa.string())
    if dtype == "text":
        return pa.array(list(map(encode_basestring_ascii, values)), type=pa.string())
    memo: dict[str, str] = {}  # a category column holds a few distinct values
    tokens = [memo.get(value) or memo.setdefault(value, encode_basestring_ascii(value)) for value in values]
    return pa.array(tokens, type=pa.string())


def _values_json_array(chunk: CheckedChunk, features: list[FeatureRule]) -> pa.StringArray:
    return _encoded(chunk, features, with_feature_hashes=False)[0]


def _encoded(
    chunk: CheckedChunk, features: list[FeatureRule], *, with_feature_hashes: bool
) -> tuple[pa.StringArray, list[str]]:
    """Each row's values as canonical JSON and (when asked) its feature hash, from one pass of JSON tokens.

    The feature hash (annotations/feature_hash.py) is sha256 of the JSON array of
    the values in schema order (`features` come in Feature.position order): the
    same tokens as the values' JSON, joined in another order, so it costs a
    string join and a sha256 per row, not a second encoding.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = len(chunk.lines)
    tokens = {rule.name: _json_tokens(chunk.columns[rule.name], rule.dtype) for rule in features}
    if not features:
        values = pa.array(["{}"] * rows, type=pa.string())
        arrays = pa.array(["[]"] * rows, type=pa.string())
    else:
        parts: list[Any] = []
        for position, rule in enumerate(sorted(features, key=lambda rule: rule.name)):
            parts.append(("{" if position == 0 else ",") + encode_basestring_ascii(rule.name) + ":")
            parts.append(tokens[rule.name])
        values = pc.binary_join_element_wise(*parts, "}", "")
        if not with_feature_hashes:
            return values, []
        in_order = [tokens[rule.name] for rule in features]
        arrays = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*in_order, ","), "]", "")
    if not with_feature_hashes:
        return values, []
    sha256 = hashlib.sha256
    return values, [sha256(payload).hexdigest() for payload in pc.cast(arrays, pa.binary()).to_pylist()]


def values_json(chunk: CheckedChunk, features: list[FeatureRule]) -> list[str]:
    """Each row's values as canonical JSON (sorted keys, no spaces): json.dumps(values, sort_keys=True, ...)."""
    return _values_json_array(chunk, features).to_pylist()


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
    """The chunk's staging-table rows, in STAGED_COLUMNS order, with each row's content and feature hashes.

    The content hash is item_content_hash's: sha256 of the canonical JSON of
    {external_id, label, observed_at (UTC ISO), values}, built around the
    values' JSON rather than dumped again. The feature hash: see `_encoded`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    label_json = {name: encode_basestring_ascii(name) for name in label_ids}
    open_state, done_state, holdout_state = Item.QueueState.OPEN, Item.QueueState.DONE, Item.QueueState.HOLDOUT
    values, feature_hashes = _encoded(chunk, features, with_feature_hashes=True)
    payloads = pc.binary_join_element_wise(
        '{"external_id":',
        pa.array(list(map(encode_basestring_ascii, chunk.ids)), type=pa.string()),
        ',"label":',
        pa.array([label_json[label] if label else "null" for label in chunk.labels], type=pa.string()),
        ',"observed_at":',
        pa.array(
            [encode_basestring_ascii(m.astimezone(UTC).isoformat()) if m else "null" for m in chunk.observed],
            type=pa.string(),
        ),
        ',"values":',
        values,
        "}",
        "",
    )
    sha256 = hashlib.sha256
    hashes = [sha256(payload).hexdigest() for payload in pc.cast(payloads, pa.binary()).to_pylist()]
    return [
        [
            batch_id,
            line_in_source(line),
            external_id,
            row_values,
            prepare_moment(moment),
            label_ids[label] if label else None,
            holdout_state if holdout else done_state if label else open_state,
            content_hash,
            feature_hash,
        ]
        for line, external_id, row_values, moment, label, content_hash, feature_hash in zip(
            chunk.lines,
            chunk.ids,
            values.to_pylist(),
            chunk.observed,
            chunk.labels,
            hashes,
            feature_hashes,
            strict=True,
        )
    ]


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
