"""Import formats besides CSV: JSON Lines and Parquet (issue 7, point 1), and Label Studio's JSON.

Each is turned into the CSV an analyst would upload, so every format gets the same
checks and the same messages (annotations/import_validation.py). Then the report's
line numbers are put back into the file's own terms:

- **CSV**: line N of the file (the header is line 1);
- **JSON Lines**: line N of the file (one object per line, blank lines counted but
  skipped); a problem with the columns themselves has no line;
- **Parquet**: row N (from 1); a problem with the columns has no line;
- **Label Studio JSON**: task N is reported as line N+1 (annotations/label_studio.py).

So the same bad row gives the same column, value and reason in every format, at the
line or row where its author will find it. These formats are converted whole, in memory;
CSV itself is read a chunk at a time (annotations/import_reading.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from typing import Any

from annotations.import_validation import ParseResult

PARQUET_MAGIC = b"PAR1"


class ImportFormatError(ValueError):
    """The file cannot be read in its format; `line` (or None) says where."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Converted:
    """A file as CSV, and how to turn a CSV line back into the file's own line or row."""

    csv: bytes
    source_lines: list[int]  # data row i (CSV line i + 2) came from source_lines[i]

    def line_in_source(self, csv_line: int | None) -> int | None:
        if csv_line is None or csv_line < 2:
            return None  # the header: a problem with the columns, not with a row
        index = csv_line - 2
        return self.source_lines[index] if index < len(self.source_lines) else None


def detect_format(file_name: str, data: bytes) -> str:
    """ "parquet", "jsonl", "labelstudio" or "csv", from the content first and the name second."""
    name = file_name.lower()
    if data[:4] == PARQUET_MAGIC or name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "labelstudio"
    start = data.lstrip()[:1]
    if start == b"{":
        return "jsonl"
    if start == b"[":
        return "labelstudio"
    return "csv"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _as_csv(records: list[dict[str, Any]]) -> bytes:
    """Records (dicts) as CSV: the columns in the order they first appear, a missing key an empty cell."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    for record in records:
        writer.writerow([_text(record.get(column)) for column in columns])
    return out.getvalue().encode("utf-8")


def jsonl_to_csv(data: bytes) -> Converted:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"Not valid UTF-8 (byte {exc.start}): save the file as UTF-8.") from None
    records, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"Not a JSON object: {exc.msg} (column {exc.colno}).", line=number) from None
        if not isinstance(record, dict):
            raise ImportFormatError("Each line must be one JSON object ({...}).", line=number)
        records.append(record)
        lines.append(number)
    if not records:
        raise ImportFormatError("The file has no rows.")
    return Converted(csv=_as_csv(records), source_lines=lines)


def parquet_to_csv(data: bytes) -> Converted:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportFormatError(f"Not a readable Parquet file: {exc}.") from None
    records = table.to_pylist()
    if not records:
        raise ImportFormatError("The file has no rows.")
    return Converted(csv=_as_csv(records), source_lines=list(range(1, len(records) + 1)))


def report_in_source_terms(result: ParseResult, converted: Converted) -> ParseResult:
    """The report and the rows with their lines put back into the file's own numbering."""
    move = converted.line_in_source
    remapped = ParseResult(
        rows=[replace(row, line=move(row.line) or row.line) for row in result.rows],
        errors=[replace(error, line=move(error.line)) for error in result.errors],
        all_errors=[replace(error, line=move(error.line)) for error in result.all_errors],
        error_count=result.error_count,
        rows_total=result.rows_total,
        bad_lines={line for line in (move(n) for n in result.bad_lines) if line is not None},
    )
    return remapped


def format_error_result(exc: ImportFormatError) -> ParseResult:
    result = ParseResult()
    result.add(exc.line, "", "", str(exc))
    return result
