"""JSON Lines and Parquet imports (issue 7, point 1): the checks and messages of CSV, in the file's own numbering."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotations.models import GoldLabel, Item
from annotations.services import ImportRejected, import_batch_create

GOOD = [
    {"external_id": "a1", "radius": 12.5, "texture": 20.0, "lobes": 3, "label": "benign"},
    {"external_id": "a2", "radius": 9.0, "texture": 11.5, "lobes": 2, "label": None},
]
# The same two bad rows in each format: row 2 has a radius that is not a number, row 3 a
# fractional lobe count.
BAD = [
    {"external_id": "b1", "radius": 10.0, "texture": 15.0, "lobes": 3},
    {"external_id": "b2", "radius": "big", "texture": 15.0, "lobes": 3},
    {"external_id": "b3", "radius": 11.0, "texture": 15.0, "lobes": 2.5},
]


def _csv(records: list[dict]) -> bytes:
    columns = list(records[0])
    lines = [",".join(columns)] + [",".join("" if r[c] is None else str(r[c]) for c in columns) for r in records]
    return ("\n".join(lines) + "\n").encode()


def _jsonl(records: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def _parquet(records: list[dict]) -> bytes:
    out = io.BytesIO()
    # Mixed types in a column (a number and a word) are written as text, as a spreadsheet export would.
    columns = {c: [None if r[c] is None else str(r[c]) for r in records] for c in records[0]}
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


def _rejected(dataset, user, name: str, data: bytes) -> list[dict]:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(dataset=dataset, user=user, file_name=name, data=data, purpose="review")
    return [e.as_dict() for e in rejected.value.result.errors]


@pytest.mark.parametrize(("name", "encode"), [("good.jsonl", _jsonl), ("good.parquet", _parquet)])
def test_a_good_file_imports_the_same_items_and_labels_as_its_csv(dataset, model_admin, name, encode):
    import_batch_create(dataset=dataset, user=model_admin, file_name=name, data=encode(GOOD), purpose="review")

    items = {i.external_id: i for i in Item.objects.filter(dataset=dataset)}
    assert items["a1"].values == {"radius": 12.5, "texture": 20.0, "lobes": 3}
    assert items["a1"].gold_label.label.name == "benign"
    assert not GoldLabel.objects.filter(item=items["a2"]).exists()
    expected_lines = {"good.jsonl": [1, 2], "good.parquet": [1, 2]}[name]
    assert sorted(i.source_row for i in items.values()) == expected_lines


def test_the_same_bad_rows_get_the_same_report_in_every_format_at_their_own_line(dataset, model_admin):
    reports = {
        "csv": _rejected(dataset, model_admin, "bad.csv", _csv(BAD)),
        "jsonl": _rejected(dataset, model_admin, "bad.jsonl", _jsonl(BAD)),
        "parquet": _rejected(dataset, model_admin, "bad.parquet", _parquet(BAD)),
    }

    def without_lines(report: list[dict]) -> list[tuple]:
        return [(e["column"], e["value"], e["reason"]) for e in report]

    assert without_lines(reports["csv"]) == [
        ("radius", "big", "Not a number."),
        ("lobes", "2.5", "Not a whole number."),
    ]
    assert without_lines(reports["jsonl"]) == without_lines(reports["csv"])
    assert without_lines(reports["parquet"]) == without_lines(reports["csv"])
    assert [e["line"] for e in reports["csv"]] == [3, 4], "CSV: the file's line (the header is line 1)"
    assert [e["line"] for e in reports["jsonl"]] == [2, 3], "JSON Lines: the file's line"
    assert [e["line"] for e in reports["parquet"]] == [2, 3], "Parquet: the row number"


def test_a_jsonl_line_that_is_not_json_is_named(dataset, model_admin):
    data = b'{"external_id": "x1", "radius": 1, "texture": 2, "lobes": 3}\n\n{"external_id": oops}\n'
    [error] = _rejected(dataset, model_admin, "bad.jsonl", data)
    assert error["line"] == 3 and error["reason"].startswith("Not a JSON object")


def test_an_unknown_column_in_jsonl_is_reported_like_in_csv(dataset, model_admin):
    records = [{"external_id": "x1", "radius": 1, "texture": 2, "lobes": 3, "colour": "red"}]
    [error] = _rejected(dataset, model_admin, "bad.jsonl", _jsonl(records))
    assert (error["line"], error["column"]) == (None, "colour")
    assert "not in the dataset's schema" in error["reason"]


def test_a_broken_parquet_file_says_so(dataset, model_admin):
    [error] = _rejected(dataset, model_admin, "bad.parquet", b"PAR1 not really")
    assert error["reason"].startswith("Not a readable Parquet file")
