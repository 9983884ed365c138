"""Reading an uploaded CSV in chunks: a fast column-wise reader for clean files, an exact one for the rest.

Issue 7 asks for imports at COPY speed with memory bounded by a chunk, not by
the file, while every problem is still reported at its exact line and column.
Those pull in different directions, so there are two readers with one output
(a DataFrame of strings per chunk, indexed by file line - 2):

- **fast** (`fast_chunks`): pyarrow's C++ CSV reader, every column read as
  text, a block of the file at a time. It cannot say which file line a row
  came from, so rows are numbered 2, 3, 4, ... and that numbering is only
  trusted when the file has exactly one physical line per row (no blank lines,
  no quoted line breaks): `FileScan.data_lines` is compared with the rows read
  at the end. Any surprise (a row of the wrong length, a count that does not
  match, a bad value) sends the whole file to the exact reader.
- **exact** (`exact_chunks`): Python's csv module, which knows the line each
  row starts on, skips blank lines, and reports a row with too many or too few
  fields. It is what the report is made from whenever anything is wrong.

`scan_file` makes one pass over the bytes first (compressed? UTF-8? a NUL?
how many lines?), a block at a time, so neither reader has to hold the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import pandas as pd

from annotations.import_validation import ParseResult, name_columns

# Bytes per read of the whole-file scan: big enough that per-block overheads vanish, small
# enough that a 1 GB upload never sits in memory.
BLOCK_BYTES = 16 * 1024 * 1024
# Bytes per block of pyarrow's CSV reader (about 8,000 rows of 30 numbers). Its peak memory
# grows with the block, well beyond the block itself (it reads ahead): a 1.6M-row file read
# whole peaked at 120 MB of RSS with 1 MB blocks, 167 with 2, 278 with 4, 431 with 8 and
# about 750 with 16, and small blocks were no slower.
FAST_READER_BLOCK_BYTES = 2 * 1024 * 1024

OpenStream = Callable[[], IO[bytes]]

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
_UTF8_BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class FileScan:
    """What one pass over the bytes found: `data_lines` is the physical lines after the header."""

    data_lines: int


def _compressed_kind(head: bytes) -> str | None:
    kind = next((name for magic, name in _COMPRESSED_MAGIC if head.startswith(magic)), None)
    if kind is None and _BZIP2.match(head):
        kind = "bzip2"
    return kind


def scan_file(open_stream: OpenStream, result: ParseResult) -> FileScan | None:
    """Check the file as a whole, a block at a time: not empty, not compressed, UTF-8, no NUL byte.

    Adds the problem to `result` and returns None when the file cannot be read
    as CSV text; otherwise returns how many lines follow the header. The
    messages are those a whole-file check gives: the first bad UTF-8 byte wins
    over a NUL byte anywhere, as decoding comes first. Byte offsets count from
    after a UTF-8 byte-order mark, as Python's "utf-8-sig" codec does.
    """
    carry = b""  # the start of a character cut by the end of the block before
    decoded = 0  # bytes checked before `carry` (after the BOM)
    newlines = 0  # line breaks in those bytes
    last_byte = b""
    anything = False
    decode_error: tuple[int, int] | None = None  # (line, byte offset after the BOM)
    bom = 0
    nul: int | None = None  # line of the first NUL byte
    with open_stream() as stream:
        first = True
        while block := stream.read(BLOCK_BYTES):
            if first:
                first = False
                kind = _compressed_kind(block)
                if kind is not None:
                    _report_compressed(kind, block, result)
                    return None
                if block.startswith(_UTF8_BOM):
                    block, bom = block[len(_UTF8_BOM) :], len(_UTF8_BOM)
            anything = anything or bool(block.strip())
            last_byte = block[-1:] or last_byte
            if nul is None and b"\x00" in block:
                nul = newlines + carry.count(b"\n") + block[: block.index(b"\x00")].count(b"\n") + 1
            buffer, carry = carry + block, b""
            if decode_error is None:
                try:
                    buffer.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if exc.reason == "unexpected end of data" and exc.end == len(buffer):
                        carry = buffer[exc.start :]  # finished by the next block, or an error at the end
                    else:
                        line = newlines + buffer[: exc.start].count(b"\n") + 1
                        decode_error = (line, decoded + exc.start)
            checked = buffer[: len(buffer) - len(carry)]
            newlines += checked.count(b"\n")
            decoded += len(checked)
    if carry and decode_error is None:
        decode_error = (newlines + 1, decoded)
    if not anything:
        result.add(None, "", "", "The file is empty.")
        return None
    if decode_error is not None:
        line, at = decode_error
        with open_stream() as stream:  # the bad bytes, which a block boundary may have cut
            stream.seek(bom + at)
            bad = stream.read(4)
        result.add(
            line, "", bad.hex(" "), f"Not valid UTF-8 (byte offset {at}). Save the file as UTF-8 and upload it again."
        )
        return None
    if nul is not None:
        result.add(nul, "", "00", "The file contains a NUL byte: it is binary or UTF-16, not UTF-8 text.")
        return None
    physical_lines = newlines + (0 if last_byte == b"\n" else 1)
    return FileScan(data_lines=max(physical_lines - 1, 0))


def _report_compressed(kind: str, head: bytes, result: ParseResult) -> None:
    """Refuse a compressed file with a message that says so.

    Decoding one as UTF-8 would tell its author to "save the file as UTF-8",
    which sends them the wrong way. An Excel workbook is a zip archive too.
    """
    if kind == "zip" and b"[Content_Types].xml" in head[:65536] and b"xl/" in head:
        result.add(None, "", "", "The file is an Excel workbook, not CSV text: open it and save it as CSV UTF-8.")
    else:
        result.add(
            None,
            "",
            "",
            f"The file is compressed ({kind}), not CSV text: extract the CSV file inside it and upload that.",
        )


def read_header(open_stream: OpenStream, result: ParseResult) -> list[str] | None:
    """The header's column names (stripped), or None with the problem in `result`."""
    with open_stream() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            header = next(csv.reader(text), [])
        except csv.Error as exc:
            result.add(1, "", "", f"The file is not well-formed CSV: {exc}")
            return None
    return [column.strip() for column in header]


class FastPathRefused(Exception):
    """The fast reader met something only the exact reader can report line by line."""


def fast_chunks(
    open_stream: OpenStream, header: list[str], *, block_bytes: int = FAST_READER_BLOCK_BYTES
) -> Iterator[pd.DataFrame]:
    """The data rows as DataFrames of text, one per block, numbered as if each row were one line.

    Raises FastPathRefused on a row of the wrong length or anything else
    pyarrow refuses; the caller checks the row count against `FileScan`.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read_options = pacsv.ReadOptions(
        block_size=block_bytes, column_names=header, skip_rows=1, use_threads=False
    )  # threads: more memory, no faster here
    # No quoted line breaks: a row that spans lines makes the reader fail, which is what
    # is wanted (only the exact reader can say on which line such a row starts).
    parse_options = pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True)
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=False,  # scan_file did
    )
    rows_before = 0
    with open_stream() as stream:
        try:
            reader = pacsv.open_csv(
                stream, read_options=read_options, parse_options=parse_options, convert_options=convert_options
            )
            for record_batch in reader:
                if record_batch.num_rows == 0:
                    continue
                frame = record_batch.to_pandas()
                frame.index = pd.RangeIndex(rows_before, rows_before + len(frame))
                rows_before += len(frame)
                yield frame
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FastPathRefused(str(exc)) from None


def exact_chunks(
    open_stream: OpenStream, header: list[str], result: ParseResult, *, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """The data rows, `chunk_rows` at a time, each indexed by its file line - 2.

    Reads with the csv module so each row keeps the file line it starts on
    (blank lines are skipped but still counted) and a row with more or fewer
    fields than the header is reported, not silently re-indexed, truncated or
    padded (a padded short row would import values shifted into the wrong
    column). Rows of the wrong length are left out of the chunks.
    `result.rows_total` counts every data row, good or not.
    """
    with open_stream() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        records: list[list[str]] = []
        lines: list[int] = []
        try:
            next(reader)  # the header, checked before
            start = reader.line_num + 1
            for record in reader:
                line, start = start, reader.line_num + 1
                if not any(field.strip() for field in record):
                    continue
                result.rows_total += 1
                if len(record) > len(header):
                    extra = ",".join(record[len(header) :])
                    result.add(line, "", extra, f"The row has {len(record)} fields; the header has {len(header)}.")
                    continue
                if len(record) < len(header):
                    missing = header[len(record) :]
                    verb = "is" if len(missing) == 1 else "are"
                    counts = f"The row has {len(record)} fields; the header has {len(header)}"
                    result.add(line, missing[0], "", f"{counts}: {name_columns(missing)} {verb} missing.")
                    continue
                records.append(record)
                lines.append(line)
                if len(records) == chunk_rows:
                    yield _frame(records, header, lines)
                    records, lines = [], []
        except csv.Error as exc:
            result.add(reader.line_num, "", "", f"The file is not well-formed CSV: {exc}")
            return
        if records:
            yield _frame(records, header, lines)


def _frame(records: list[list[str]], header: list[str], lines: list[int]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=header, index=[line - 2 for line in lines], dtype=str)
