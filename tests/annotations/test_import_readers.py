"""The two CSV readers (annotations/import_reading.py) give the same items and the same report.

Clean files go through pyarrow a block at a time and are staged as they are
read; anything unusual (blank lines, a row across lines, a bad cell) sends the
file through the csv module, which names every line. These tests pin down
that the switch is invisible: same values, same content hashes, same report,
and the checks that span chunks (a duplicate id far from its first use) still
name both lines.
"""

from __future__ import annotations

import io

import pytest

from annotations import import_reading, imports
from annotations.import_validation import FeatureRule, ParseResult, parse_import
from annotations.models import Dataset, ImportBatch, Item
from annotations.services import ImportRejected, import_batch_create, item_content_hash

HEADER = "external_id,radius,texture,lobes,label"


def _import(dataset: Dataset, user, text: str | bytes, name: str = "rows.csv") -> ImportBatch:  # type: ignore[no-untyped-def]
    data = text.encode() if isinstance(text, str) else text
    return import_batch_create(dataset=dataset, user=user, file_name=name, data=data, purpose="review")


def _rejected(dataset: Dataset, user, text: str | bytes) -> list[tuple[int | None, str, str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRejected) as caught:
        _import(dataset, user, text)
    return [(e["line"], e["column"], e["reason"]) for e in caught.value.batch.report["errors"]]


def _items(dataset: Dataset) -> list[tuple[str, dict, int, str]]:
    return list(
        Item.objects.filter(dataset=dataset)
        .order_by("source_row")
        .values_list("external_id", "values", "source_row", "content_hash")
    )


def test_a_clean_file_takes_the_fast_reader_and_stores_exact_values_and_hashes(dataset, model_admin):
    text = (
        f"{HEADER}\n"
        "a, 10.5 ,1e-7,3,benign\n"
        "b,12,0.1,9007199254740993,\n"  # an integer beyond 2**53 stays exact
        "c,-0.000120,123456789.125,0,malignant\n"
    )
    batch = _import(dataset, model_admin, text)

    assert batch.report["seconds"]["reader"] == "fast"
    items = _items(dataset)
    assert [(external_id, values, row) for external_id, values, row, _ in items] == [
        ("a", {"radius": 10.5, "texture": 1e-7, "lobes": 3}, 2),
        ("b", {"radius": 12.0, "texture": 0.1, "lobes": 9007199254740993}, 3),
        ("c", {"radius": -0.00012, "texture": 123456789.125, "lobes": 0}, 4),
    ]
    labels = {"a": "benign", "b": None, "c": "malignant"}
    for external_id, values, _, content_hash in items:
        assert content_hash == item_content_hash(
            external_id=external_id, values=values, observed_at=None, label=labels[external_id]
        )


@pytest.mark.parametrize(
    "text",
    [
        f"{HEADER}\n\na,10.5,1.5,3,benign\n\n\nb,12,0.1,4,\n",  # blank lines (counted, skipped)
        f'{HEADER}\r\na,10.5,1.5,3,benign\r\n"b",12,0.1,4,\r\n',  # CRLF and a quoted id
        f"{HEADER}\na,10.5,1.5,3,benign\nb,12,0.1,4,",  # no newline at the end
    ],
    ids=["blank-lines", "crlf", "no-final-newline"],
)
def test_unusual_but_valid_files_import_the_same_items_whichever_reader_reads_them(dataset, model_admin, text):
    _import(dataset, model_admin, text)

    assert [(external_id, values) for external_id, values, _, _ in _items(dataset)] == [
        ("a", {"radius": 10.5, "texture": 1.5, "lobes": 3}),
        ("b", {"radius": 12.0, "texture": 0.1, "lobes": 4}),
    ]


def test_a_row_spanning_lines_keeps_the_line_it_starts_on(dataset, model_admin):
    # The id holds a line break inside quotes: pyarrow refuses it, the csv module reads it.
    text = f'{HEADER}\na,10.5,1.5,3,benign\nb,12,0.1,4,\nc,1,2,x,benign\n"d\nd",1,2,3,\n'
    assert _rejected(dataset, model_admin, text) == [(4, "lobes", "Not a whole number.")]


def test_a_bad_cell_in_a_later_chunk_is_reported_at_its_line_and_nothing_is_staged(dataset, model_admin, monkeypatch):
    monkeypatch.setattr(imports, "STAGE_CHUNK_ROWS", 3)
    rows = [f"r{i},{i}.5,1.0,{i}," for i in range(10)]
    rows[7] = "r7,seven,1.0,7,"
    assert _rejected(dataset, model_admin, "\n".join([HEADER, *rows]) + "\n") == [(9, "radius", "Not a number.")]
    assert not Item.objects.filter(dataset=dataset).exists()


def test_a_duplicate_id_chunks_apart_names_both_lines(dataset, model_admin, monkeypatch):
    monkeypatch.setattr(imports, "STAGE_CHUNK_ROWS", 2)
    rows = [f"r{i},1.5,1.0,{i}," for i in range(7)]
    rows[6] = "r1,1.5,1.0,6,"
    assert _rejected(dataset, model_admin, "\n".join([HEADER, *rows]) + "\n") == [
        (8, "external_id", "Duplicate id: already on line 3.")
    ]


def test_the_fast_and_the_exact_reader_give_the_same_report(dataset, model_admin, monkeypatch):
    """A file the fast reader refuses at its first bad cell gets the exact reader's complete report."""
    text = f"{HEADER}\na,x,1.5,3,benign\nb,12,,4.5,\nc,1,2,3,nobody\na,1,2,3,\n"
    fast = _rejected(dataset, model_admin, text)

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise import_reading.FastPathRefused("test: the exact reader from the start")
        yield

    monkeypatch.setattr(imports, "fast_chunks", refuse)
    assert (
        _rejected(dataset, model_admin, text)
        == fast
        == [
            (5, "external_id", "Duplicate id: already on line 2."),
            (2, "radius", "Not a number."),
            (3, "texture", "Missing value."),
            (3, "lobes", "Not a whole number."),
            (4, "label", "Unknown label: expected one of malignant, benign."),
        ]
    )


def _parse(data: bytes) -> ParseResult:
    return parse_import(
        data,
        features=[FeatureRule("radius", "float")],
        label_names=["benign"],
        require_label=False,
    )


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 64])
def test_bad_utf8_is_found_at_the_same_byte_and_line_whatever_the_block_size(monkeypatch, block):
    data = "external_id,radius\nä,1.5\nb,2\n".encode() + b"c\xff\xfe,3\n"
    monkeypatch.setattr(import_reading, "BLOCK_BYTES", block)
    result = _parse(data)
    with pytest.raises(UnicodeDecodeError) as whole:  # what decoding the whole file at once reports
        data.decode("utf-8")
    offset = whole.value.start
    assert [(e.line, e.value, e.reason) for e in result.errors] == [
        (
            4,
            "ff fe 2c 33",
            f"Not valid UTF-8 (byte offset {offset}). Save the file as UTF-8 and upload it again.",
        )
    ]


@pytest.mark.parametrize("block", [1, 2, 4, 64])
def test_a_character_cut_by_a_block_boundary_is_not_an_error_but_one_cut_by_the_end_is(monkeypatch, block):
    monkeypatch.setattr(import_reading, "BLOCK_BYTES", block)
    good = "external_id,radius\néé,1.5\n".encode()
    assert _parse(good).ok
    truncated = good + b"x,1\nz" + "é".encode()[:1]
    [error] = _parse(truncated).errors
    assert (error.line, error.value) == (4, "c3")


def test_scan_counts_lines_a_block_at_a_time(monkeypatch):
    monkeypatch.setattr(import_reading, "BLOCK_BYTES", 3)
    data = b"\xef\xbb\xbfexternal_id,radius\na,1\nb,2\n"
    scan = import_reading.scan_file(lambda: io.BytesIO(data), ParseResult())
    assert scan == import_reading.FileScan(data_lines=2)


def test_a_neutralised_cell_loses_its_apostrophe_but_a_number_column_does_not(dataset, model_admin):
    """An exported CSV puts ' before text starting with = + - @ (csv_safety); the import takes it off again."""
    _import(dataset, model_admin, f"{HEADER}\n'-7,1.5,1.0,3,benign\n'x,2.5,1.0,4,benign\n")
    assert [external_id for external_id, _, _, _ in _items(dataset)] == ["-7", "'x"]

    assert _rejected(dataset, model_admin, f"{HEADER}\nz,'-1.5,1.0,3,\n") == [(2, "radius", "Not a number.")]
