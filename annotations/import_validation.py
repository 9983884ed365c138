"""Parse and validate an uploaded CSV against a dataset schema, without touching the database.

Every problem is reported as (line, column, value, reason), where line 1 is the
header, so the person who made the file can find and fix it. The caller
imports nothing unless the list of errors is empty.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

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


def _name_columns(columns: list[str]) -> str:
    """At most MAX_NAMED_COLUMNS column names, each shortened, then how many more."""
    named = ", ".join(shorten(column) for column in columns[:MAX_NAMED_COLUMNS])
    rest = len(columns) - MAX_NAMED_COLUMNS
    return f"{named} and {rest} more" if rest > 0 else named


@dataclass(frozen=True)
class FeatureRule:
    name: str
    dtype: str  # float | integer | boolean | category
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


# Leading bytes of compressed formats people upload instead of the CSV inside
# them. None of them can start a UTF-8 CSV header a person would write.
_COMPRESSED_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip archive
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")


def _check_not_compressed(data: bytes, result: ParseResult) -> bool:
    """Refuse a compressed file with a message that says so.

    Decoding one as UTF-8 would tell its author to "save the file as UTF-8",
    which sends them the wrong way. An Excel workbook is a zip archive too.
    """
    kind = next((name for magic, name in _COMPRESSED_MAGIC if data.startswith(magic)), None)
    if kind is None and _BZIP2.match(data):
        kind = "bzip2"
    if kind is None:
        return True
    if kind == "zip" and b"[Content_Types].xml" in data[:65536] and b"xl/" in data:
        result.add(None, "", "", "The file is an Excel workbook, not CSV text: open it and save it as CSV UTF-8.")
    else:
        result.add(
            None,
            "",
            "",
            f"The file is compressed ({kind}), not CSV text: extract the CSV file inside it and upload that.",
        )
    return False


def _decode(data: bytes, result: ParseResult) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 4]
        result.add(
            line,
            "",
            bad.hex(" "),
            f"Not valid UTF-8 (byte offset {exc.start}). Save the file as UTF-8 and upload it again.",
        )
        return None
    if "\x00" in text:
        offset = text.index("\x00")
        result.add(
            text[:offset].count("\n") + 1,
            "",
            "00",
            "The file contains a NUL byte: it is binary or UTF-16, not UTF-8 text.",
        )
        return None
    return text


def _check_header(header: list[str], features: list[FeatureRule], require_label: bool, result: ParseResult) -> bool:
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


def _validate_numbers(raw: pd.Series, lines: pd.Index, rule: FeatureRule, result: ParseResult) -> list[Any]:
    """A number column, checked column-wise (issue 7: no Python step per cell): the bad cells are
    found with array operations, then reported one by one, in line order, as before."""
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


def _validate_feature(frame: pd.DataFrame, rule: FeatureRule, result: ParseResult) -> list[Any]:
    raw = frame[rule.name]
    lines = frame.index + 2
    if rule.dtype in ("float", "integer"):
        return _validate_numbers(raw, lines, rule, result)
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


def parse_import(
    data: bytes,
    *,
    features: list[FeatureRule],
    label_names: list[str],
    require_label: bool,
) -> ParseResult:
    """Parse `data` as CSV and validate every row. Touches no database."""
    result = ParseResult()
    if not data.strip():
        result.add(None, "", "", "The file is empty.")
        return result
    if not _check_not_compressed(data, result):
        return result
    text = _decode(data, result)
    if text is None:
        return result
    try:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error as exc:
        result.add(1, "", "", f"The file is not well-formed CSV: {exc}")
        return result
    header = [column.strip() for column in header]
    if not _check_header(header, features, require_label, result):
        return result
    # Read the rows with the csv module so each keeps the file line it starts on
    # (blank lines are skipped but still counted) and a row with more or fewer
    # fields than the header is reported, not silently re-indexed, truncated or
    # padded (a padded short row would import values shifted into the wrong column).
    records: list[list[str]] = []
    record_lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        next(reader)  # the header, checked above
        start = reader.line_num + 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(field.strip() for field in record):
                continue
            if len(record) > len(header):
                extra = ",".join(record[len(header) :])
                result.add(line, "", extra, f"The row has {len(record)} fields; the header has {len(header)}.")
                continue
            if len(record) < len(header):
                missing = header[len(record) :]
                verb = "is" if len(missing) == 1 else "are"
                counts = f"The row has {len(record)} fields; the header has {len(header)}"
                result.add(line, missing[0], "", f"{counts}: {_name_columns(missing)} {verb} missing.")
                continue
            records.append(record)
            record_lines.append(line)
    except csv.Error as exc:
        result.add(reader.line_num, "", "", f"The file is not well-formed CSV: {exc}")
        return result
    if not result.ok:
        result.rows_total = len(records) + len(result.bad_lines)  # well-formed rows and wrong-length ones
        return result
    frame = pd.DataFrame(records, columns=header, index=[line - 2 for line in record_lines], dtype=str)
    result.rows_total = len(frame)
    if frame.empty:
        result.add(2, "", "", "The file has a header but no data rows.")
        return result

    lines = [int(i) + 2 for i in frame.index]
    ids = frame[ID_COLUMN].str.strip()
    first_seen: dict[str, int] = {}
    ids = ids.tolist()  # plain strings: indexing a pandas column per row costs more than the check
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
        elif external_id in first_seen:
            result.add(line, ID_COLUMN, external_id, f"Duplicate id: already on line {first_seen[external_id]}.")
        else:
            first_seen[external_id] = line

    columns = {rule.name: _validate_feature(frame, rule, result) for rule in features}

    labels: list[str | None] = [None] * len(frame)
    if LABEL_COLUMN in frame.columns:
        known = set(label_names)
        for position, (line, raw) in enumerate(zip(lines, frame[LABEL_COLUMN], strict=True)):
            value = raw.strip()
            if value == "":
                if require_label:
                    result.add(line, LABEL_COLUMN, raw, "Missing label (every holdout row needs one).")
            elif value not in known:
                result.add(line, LABEL_COLUMN, raw, f"Unknown label: expected one of {', '.join(label_names)}.")
            else:
                labels[position] = value

    observed: list[datetime | None] = [None] * len(frame)
    if OBSERVED_COLUMN in frame.columns:
        for position, (line, raw) in enumerate(zip(lines, frame[OBSERVED_COLUMN], strict=True)):
            moment, problem = _parse_observed_at(raw)
            if problem:
                result.add(line, OBSERVED_COLUMN, raw, problem)
            observed[position] = moment

    if not result.ok:
        return result
    names = list(columns)
    # Rows from the checked columns, transposed by zip (in C) rather than indexed cell by cell
    # (a schema with no features gives each row empty values).
    transposed = zip(*columns.values(), strict=True) if names else [()] * len(lines)
    for line, external_id, row_values, moment, label in zip(lines, ids, transposed, observed, labels, strict=True):
        result.rows.append(
            ParsedRow(
                line=line,
                external_id=external_id,
                values=dict(zip(names, row_values, strict=True)),
                observed_at=moment,
                label=label,
            )
        )
    return result
