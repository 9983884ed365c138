"""Parse and validate an uploaded CSV against a dataset schema, without touching the database.

Every problem is reported as (line, column, value, reason), where line 1 is the
header, so the person who made the file can find and fix it. The caller
imports nothing unless the list of errors is empty.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

from workflow_site.csv_safety import NEUTRALISED_CELL
from workflow_site.invisible_chars import describe, has_hidden, is_hidden_char, reveal

# The report echoes what it complains about; both caps keep a hostile or broken
# file (50 MB of header names) from becoming a page of the same size.
MAX_REPORTED_ERRORS = 200
# The downloadable full report (a CSV beside the batch) keeps this many; each value is
# shortened like the page's, so the file stays bounded (about 50 MB at the worst).
FULL_REPORT_MAX_ERRORS = 100_000
MAX_ECHOED_CHARS = 200
MAX_NAMED_COLUMNS = 10
ID_COLUMN = "external_id"
LABEL_COLUMN = "label"
OBSERVED_COLUMN = "observed_at"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
# The shape of an ISO 8601 date and optional time (basic or extended form), used
# only to tell "2024-02-30" (a date that does not exist) from text that is not a date.
# The basic form (20240501) counts only with a time after it, so a Unix timestamp
# such as 1714552200 is "not ISO 8601", not "month 55 does not exist".
_DATETIME_SHAPE = re.compile(
    r"(?:(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})|(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?=T))"
    r"(?:[T ](?P<hour>\d{2})(?::?(?P<minute>\d{2})(?::?(?P<second>\d{2}))?)?)?"
)


def shorten(text: str, limit: int = MAX_ECHOED_CHARS) -> str:
    """`text`, or its first `limit` characters followed by "… (N characters)"."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def name_columns(columns: list[str]) -> str:
    """At most MAX_NAMED_COLUMNS column names, each shortened, then how many more."""
    named = ", ".join(shorten(column) for column in columns[:MAX_NAMED_COLUMNS])
    rest = len(columns) - MAX_NAMED_COLUMNS
    return f"{named} and {rest} more" if rest > 0 else named


@dataclass(frozen=True)
class FeatureRule:
    name: str
    dtype: str  # float | integer | boolean | category | text
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    line: int | None
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "value": self.value, "reason": self.reason}


@dataclass
class ParsedRow:
    line: int
    external_id: str
    values: dict[str, Any]
    observed_at: datetime | None
    label: str | None


@dataclass
class ParseResult:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    all_errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    rows_total: int = 0
    # Data lines (2 and on) with at least one problem, reported or not.
    bad_lines: set[int] = field(default_factory=set)
    # What the import reports without refusing the file (annotations/import_leakage.py::ImportWarnings.as_report).
    warnings: dict[str, Any] = field(default_factory=dict)

    def add(self, line: int | None, column: str, value: Any, reason: str) -> None:
        """Count a problem; keep the first MAX_REPORTED_ERRORS for the page and FULL_REPORT_MAX_ERRORS
        for the downloadable report, with column and value shortened."""
        self.error_count += 1
        if line is not None and line >= 2:
            self.bad_lines.add(line)
        if len(self.all_errors) < FULL_REPORT_MAX_ERRORS:
            shown = "" if value is None else str(value)
            error = RowError(line, shorten(column), shorten(shown), reason)
            self.all_errors.append(error)
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(error)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def rows_rejected(self) -> int:
        """Data rows with a problem (at most rows_total: "no data rows" is reported on line 2)."""
        return min(len(self.bad_lines), self.rows_total)

    @property
    def not_shown(self) -> int:
        """Problems counted but not kept in `errors`."""
        return self.error_count - len(self.errors)


def check_header(header: list[str], features: list[FeatureRule], require_label: bool, result: ParseResult) -> bool:
    if len(header) == 1:
        for delimiter, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if delimiter in header[0]:
                result.add(1, "", header[0], f"The file looks {name}-separated; Loupe expects comma-separated values.")
                return False
    seen: set[str] = set()
    for column in header:
        if column in seen:
            result.add(1, column, column, "Column appears more than once in the header.")
        seen.add(column)
    expected = [ID_COLUMN, *(f.name for f in features)]
    for column in expected:
        if column not in seen:
            result.add(1, column, "", "Required column is missing from the header.")
    if require_label and LABEL_COLUMN not in seen:
        result.add(1, LABEL_COLUMN, "", "A holdout file must have a label column.")
    allowed = set(expected) | {LABEL_COLUMN, OBSERVED_COLUMN}
    for column in header:
        if column not in allowed:
            result.add(1, column, column, "Unexpected column: it is not in the dataset's schema.")
    return result.ok


def _parse_bool(raw: str) -> bool | None:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _clean_numbers(raw: pd.Series, rule: FeatureRule) -> list[Any] | None:
    """The column's numbers when every cell is a finite number (a whole one for an integer column), else None.

    pyarrow's C++ parser, a few milliseconds for 100,000 cells; it rounds
    correctly, so values do not depend on the reader that met the file. A
    column it refuses is checked cell by cell by the pandas path below, which
    names every bad cell (and accepts what it alone reads, such as "12.0" as
    a whole number).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(raw, type=pa.string()))
    try:
        numbers = pc.cast(text, pa.int64() if rule.dtype == "integer" else pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if numbers.null_count or (rule.dtype == "float" and len(numbers) and not pc.all(pc.is_finite(numbers)).as_py()):
        return None
    return numbers.to_pylist()


def _validate_numbers(raw: pd.Series, lines: pd.Index, rule: FeatureRule, result: ParseResult) -> list[Any]:
    """A number column, checked column-wise (issue 7: no Python step per cell): the bad cells are
    found with array operations, then reported one by one, in line order, as before."""
    clean = _clean_numbers(raw, rule)
    if clean is not None:
        return clean
    stripped = raw.str.strip()
    numbers = pd.to_numeric(stripped, errors="coerce")
    as_float = numbers.to_numpy(dtype="float64", na_value=np.nan)
    missing = (stripped == "").to_numpy()
    not_number = ~missing & ~np.isfinite(as_float)
    not_whole = np.zeros(len(as_float), dtype=bool)
    if rule.dtype == "integer":
        fine = ~missing & ~not_number
        not_whole[fine] = np.mod(as_float[fine], 1) != 0
    bad = missing | not_number | not_whole
    for position in np.flatnonzero(bad):
        line, text = int(lines[position]), raw.iat[position]
        if missing[position]:
            result.add(line, rule.name, text, "Missing value.")
        elif not_number[position]:
            result.add(line, rule.name, text, "Not a number." if rule.dtype == "float" else "Not a whole number.")
        else:
            result.add(line, rule.name, text, "Not a whole number.")
    if rule.dtype == "integer":
        exact = numbers.dtype.kind in "iu"  # parsed as integers: keep them exact beyond 2**53
        values: list[Any] = numbers.tolist() if exact else [int(v) if v == v else None for v in as_float.tolist()]
        values = [None if b else (int(v) if v is not None else None) for v, b in zip(values, bad.tolist(), strict=True)]
        return values
    values = as_float.tolist()
    for position in np.flatnonzero(bad):
        values[position] = None
    return values


MAX_TEXT_CHARS = 100_000


def _validate_text(raw: pd.Series, lines: pd.Index, rule: FeatureRule, result: ParseResult) -> list[Any]:
    """Free text, kept as written (line breaks as \\n; an empty cell is an empty text), at most MAX_TEXT_CHARS.

    Hidden and direction-changing characters are allowed in a note (they are
    shown visibly wherever it is displayed); the file's NUL bytes were refused
    before this.
    """
    values = raw.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    lengths = values.str.len()
    for position in (lengths > MAX_TEXT_CHARS).to_numpy().nonzero()[0]:
        result.add(
            int(lines[position]),
            rule.name,
            raw.iat[position],
            f"The text is {int(lengths.iat[position]):,} characters; the limit is {MAX_TEXT_CHARS:,}.",
        )
    return values.tolist()


def _validate_feature(frame: pd.DataFrame, rule: FeatureRule, result: ParseResult) -> list[Any]:
    raw = frame[rule.name]
    lines = frame.index + 2
    if rule.dtype in ("float", "integer"):
        return _validate_numbers(raw, lines, rule, result)
    if rule.dtype == "text":
        return _validate_text(raw, lines, rule, result)
    if rule.dtype == "boolean":
        out = []
        for line, text in zip(lines, raw, strict=True):
            parsed = _parse_bool(text)
            if parsed is None:
                result.add(int(line), rule.name, text, "Not yes/no (use true/false, yes/no or 1/0).")
            out.append(parsed)
        return out
    allowed = set(rule.categories)
    out = []
    for line, text in zip(lines, raw, strict=True):
        value = text.strip()
        if value not in allowed:
            result.add(int(line), rule.name, text, f"Not one of the allowed values: {', '.join(rule.categories)}.")
        out.append(value)
    return out


def _why_not_a_datetime(value: str) -> str:
    """Why `value`, which fromisoformat refused, is not a date and time.

    A value shaped like ISO 8601 whose day or hour does not exist (Feb 30, year 0,
    25:00) is named as such: telling its author to use ISO 8601 would send them
    looking for a format problem they do not have.
    """
    shape = _DATETIME_SHAPE.match(value)
    if shape is None:
        return "Not an ISO 8601 date and time (e.g. 2024-05-01T08:30:00+02:00)."
    year, month, day = shape["year"] or shape["y"], shape["month"] or shape["m"], shape["day"] or shape["d"]
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return f"Not a real date: {year}-{month}-{day} does not exist (check the year, month and day)."
    if shape["hour"] is not None:
        parts = [shape["hour"], shape["minute"] or "00", shape["second"] or "00"]
        try:
            time(*(int(part) for part in parts))
        except ValueError:
            return (
                f"Not a real time of day: {':'.join(parts)} does not exist "
                "(hours run 00-23, minutes and seconds 00-59)."
            )
    return "Not an ISO 8601 date and time (e.g. 2024-05-01T08:30:00+02:00)."


def _parse_observed_at(text: str) -> tuple[datetime | None, str | None]:
    value = text.strip()
    if value == "":
        return None, None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, _why_not_a_datetime(value)
    if moment.tzinfo is None:
        return None, "No time zone: add one (e.g. +00:00 or Z) so the time is unambiguous."
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return None, "Date is out of range."
    return moment, None


@dataclass
class CheckedChunk:
    """One chunk's rows, checked and typed, column by column (file lines, ids, feature values, labels, times)."""

    lines: list[int]
    ids: list[str]
    columns: dict[str, list[Any]]
    labels: list[str | None]
    observed: list[datetime | None]

    def rows(self) -> Iterator[ParsedRow]:
        names = list(self.columns)
        # Rows from the checked columns, transposed by zip (in C) rather than indexed cell by cell
        # (a schema with no features gives each row empty values).
        transposed = zip(*self.columns.values(), strict=True) if names else [()] * len(self.lines)
        for line, external_id, values, moment, label in zip(
            self.lines, self.ids, transposed, self.observed, self.labels, strict=True
        ):
            yield ParsedRow(
                line=line,
                external_id=external_id,
                values=dict(zip(names, values, strict=True)),
                observed_at=moment,
                label=label,
            )


def check_chunk(
    frame: pd.DataFrame,
    *,
    features: list[FeatureRule],
    label_names: list[str],
    require_label: bool,
    result: ParseResult,
    first_seen: dict[str, int] | None,
) -> CheckedChunk:
    """Check every cell of a chunk of rows (text, indexed by file line - 2), column by column.

    Problems go to `result` with their line and column; the returned values are
    None where a cell was bad. `first_seen` (id -> line, shared across chunks)
    reports duplicate ids; None leaves that check to the caller (a set-based
    check over the staged rows, which keeps memory bounded by a chunk).
    """
    frame = _without_neutralising_apostrophes(frame, features)
    lines = [int(i) + 2 for i in frame.index]
    ids = frame[ID_COLUMN].str.strip().tolist()  # plain strings: indexing a pandas column per row costs more
    for line, external_id in zip(lines, ids, strict=True):
        if external_id == "":
            result.add(line, ID_COLUMN, "", "Missing id.")
        elif len(external_id) > 200:
            result.add(line, ID_COLUMN, external_id, "Id is longer than 200 characters.")
        elif has_hidden(external_id):
            # An id that reads differently from what is stored (a right-to-left override,
            # a zero-width space) lets two records look identical (defect 20).
            hidden = next(char for char in external_id if is_hidden_char(char))
            result.add(
                line,
                ID_COLUMN,
                reveal(external_id),
                f"The id contains an invisible or direction-changing character ({describe(hidden)}); "
                "ids must be plain visible text.",
            )
        elif first_seen is None:
            continue
        elif external_id in first_seen:
            result.add(line, ID_COLUMN, external_id, f"Duplicate id: already on line {first_seen[external_id]}.")
        else:
            first_seen[external_id] = line

    columns = {rule.name: _validate_feature(frame, rule, result) for rule in features}

    labels: list[str | None] = [None] * len(frame)
    if LABEL_COLUMN in frame.columns:
        labels = _validate_labels(frame[LABEL_COLUMN], lines, label_names, require_label, result)

    observed: list[datetime | None] = [None] * len(frame)
    if OBSERVED_COLUMN in frame.columns:
        for position, (line, raw) in enumerate(zip(lines, frame[OBSERVED_COLUMN], strict=True)):
            moment, problem = _parse_observed_at(raw)
            if problem:
                result.add(line, OBSERVED_COLUMN, raw, problem)
            observed[position] = moment
    return CheckedChunk(lines=lines, ids=ids, columns=columns, labels=labels, observed=observed)


def _without_neutralising_apostrophes(frame: pd.DataFrame, features: list[FeatureRule]) -> pd.DataFrame:
    """Text cells with the apostrophe a CSV export puts before = + - @ tab CR (workflow_site/csv_safety.py)
    taken off again, so an exported file imports the same ids, categories and labels (issue 7: round trip).

    Only text columns: a number never gets the apostrophe, and "'-7" in a number column stays an error.
    """
    text_columns = [ID_COLUMN, LABEL_COLUMN, *(rule.name for rule in features if rule.dtype in ("category", "text"))]
    changed = {}
    for column in text_columns:
        if column in frame.columns and frame[column].str.startswith("'").any():
            changed[column] = frame[column].str.replace(NEUTRALISED_CELL, r"\1", regex=True)
    return frame.assign(**changed) if changed else frame


def _validate_labels(
    raw: pd.Series, lines: list[int], label_names: list[str], require_label: bool, result: ParseResult
) -> list[str | None]:
    stripped = raw.str.strip()
    known = set(label_names)
    labels: list[str | None] = [value or None for value in stripped.tolist()]
    # Column-wise first: a column of known names (and blanks, where allowed) needs no step per cell.
    allowed = known if require_label else known | {""}
    if stripped.isin(list(allowed)).all():
        return labels
    for position, (line, text, value) in enumerate(zip(lines, raw, stripped, strict=True)):
        if value == "":
            if require_label:
                result.add(line, LABEL_COLUMN, text, "Missing label (every holdout row needs one).")
        elif value not in known:
            result.add(line, LABEL_COLUMN, text, f"Unknown label: expected one of {', '.join(label_names)}.")
            labels[position] = None
    return labels


def parse_import(
    data: bytes,
    *,
    features: list[FeatureRule],
    label_names: list[str],
    require_label: bool,
) -> ParseResult:
    """Parse `data` (a whole CSV in memory) and validate every row with the exact reader. Touches no database.

    The worker reads files in chunks instead (annotations/imports.py); this is
    for callers that hold a small file already.
    """
    from annotations.import_reading import exact_chunks, read_header, scan_file

    result = ParseResult()

    def open_stream() -> io.BytesIO:
        return io.BytesIO(data)

    if scan_file(open_stream, result) is None:
        return result
    header = read_header(open_stream, result)
    if header is None or not check_header(header, features, require_label, result):
        return result
    first_seen: dict[str, int] = {}
    chunks = []
    for frame in exact_chunks(open_stream, header, result, chunk_rows=len(data) + 1):
        chunks.append(
            check_chunk(
                frame,
                features=features,
                label_names=label_names,
                require_label=require_label,
                result=result,
                first_seen=first_seen,
            )
        )
    if result.ok and result.rows_total == 0:
        result.add(2, "", "", "The file has a header but no data rows.")
    if result.ok:
        for chunk in chunks:
            result.rows.extend(chunk.rows())
    return result
