"""Writers that turn an iterator of row dicts into CSV, JSONL or Parquet bytes, a chunk at a time.

No Django, so an export of a million rows never holds more than
one chunk: CSV and JSONL yield text as rows arrive; Parquet writes one row
group per chunk into a spooled temporary file, since its footer comes last.

CSV cells that a spreadsheet would run as a formula (text starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) get a leading
apostrophe (OWASP "CSV injection"); numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO

from workflow_site.csv_safety import neutralise_formula

ROW_GROUP = 10_000


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    JSON = "json"  # one JSON array (Label Studio's task format)

    @property
    def content_type(self) -> str:
        return {
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.JSONL: "application/x-ndjson; charset=utf-8",
            ExportFormat.PARQUET: "application/vnd.apache.parquet",
            ExportFormat.JSON: "application/json; charset=utf-8",
        }[self]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_chunks(columns: list[str], rows: Iterable[dict[str, Any]], every: int = 1000) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralise_formula(name) for name in columns])
    for n, row in enumerate(rows, start=1):
        writer.writerow(["" if row.get(c) is None else neutralise_formula(_plain(row.get(c))) for c in columns])
        if n % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(columns: list[str], rows: Iterable[dict[str, Any]], every: int = 1000) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False))
        if len(lines) >= every:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def parquet_file(columns: list[str], types: dict[str, str], rows: Iterable[dict[str, Any]]) -> BinaryIO:
    """A Parquet file (rewound, ready to stream) written one row group of ROW_GROUP rows at a time.

    `types` maps a column to "float", "int", "bool", "timestamp" or "string" (the default).
    The file spools to disk past 8 MB, so memory stays bounded by one row group.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_type = {
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(c, arrow_type.get(types.get(c, "string"), pa.string())) for c in columns])
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open to the caller
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    out.seek(0)
    return out
