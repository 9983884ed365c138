"""Importing a CSV: all rows or none, and a row-level report (line, column, value, reason) when any row is bad.

A rejected file writes no items and no gold labels; it is recorded as a
rejected ImportBatch (with its report) and an audit event, so it leaves a trace.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import zipfile
from datetime import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse
from django.utils.html import escape

from annotations.models import Dataset, GoldLabel, ImportBatch, Item
from annotations.services import ImportRejected, import_batch_create, item_content_hash
from governance.models import AuditEvent
from tests.conftest import csv_bytes, login, synthetic_rows

HEADER = "external_id,radius,texture,lobes"


def _counts() -> dict[str, int]:
    return {
        "items": Item.objects.count(),
        "batches": ImportBatch.objects.count(),
        "gold_labels": GoldLabel.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def _after_rejection(before: dict[str, int]) -> dict[str, int]:
    """The counts once a rejection is recorded: one batch and its events (queued, started, rejected), no items."""
    return {**before, "batches": before["batches"] + 1, "audit_events": before["audit_events"] + 3}


def _reject(dataset: Dataset, user, data: bytes, purpose: str = ImportBatch.Purpose.REVIEW) -> list[dict]:
    """Import `data`, expect it to be rejected and recorded with no rows written, and return the reported errors."""
    before = _counts()
    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(dataset=dataset, user=user, file_name="bad.csv", data=data, purpose=purpose)
    assert _counts() == _after_rejection(before), "a rejected import writes its record and nothing else"
    result = rejected.value.result
    assert not result.ok
    assert result.error_count == len(result.errors) > 0
    errors = [error.as_dict() for error in result.errors]
    batch = rejected.value.batch
    assert (batch.status, batch.rows_imported, batch.report["errors"]) == (ImportBatch.Status.REJECTED, 0, errors)
    return errors


def _lines(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tumours.csv", data)
    return out.getvalue()


def _compressed(kind: str) -> dict:
    return {
        "line": None,
        "column": "",
        "value": "",
        "reason": f"The file is compressed ({kind}), not CSV text: extract the CSV file inside it and upload that.",
    }


# --- The service: every malformed file is rejected with a precise error and no writes -------------------------


REJECTED_FILES = [
    pytest.param(
        b"external_id,radius,lobes\nt1,10,3\n",
        ImportBatch.Purpose.REVIEW,
        {"line": 1, "column": "texture", "value": "", "reason": "Required column is missing from the header."},
        id="missing-column",
    ),
    pytest.param(
        _lines("t1,10,15,3", "t2,big,15,3"),
        ImportBatch.Purpose.REVIEW,
        {"line": 3, "column": "radius", "value": "big", "reason": "Not a number."},
        id="text-in-float-feature",
    ),
    pytest.param(
        _lines("t1,10,15,2.5"),
        ImportBatch.Purpose.REVIEW,
        {"line": 2, "column": "lobes", "value": "2.5", "reason": "Not a whole number."},
        id="fraction-in-integer-feature",
    ),
    pytest.param(
        _lines("t1,10,15,3", "t2,10,,3"),
        ImportBatch.Purpose.REVIEW,
        {"line": 3, "column": "texture", "value": "", "reason": "Missing value."},
        id="empty-feature-value",
    ),
    pytest.param(
        _lines("t1,10,15,3,benign", "t2,10,15,3,Malignant", header=HEADER + ",label"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 3,
            "column": "label",
            "value": "Malignant",
            "reason": "Unknown label: expected one of malignant, benign.",
        },
        id="unknown-label",
    ),
    pytest.param(
        _lines("t1,10,15,3", "t2,11,15,3", "t1,12,15,3"),
        ImportBatch.Purpose.REVIEW,
        {"line": 4, "column": "external_id", "value": "t1", "reason": "Duplicate id: already on line 2."},
        id="duplicate-id-in-file",
    ),
    pytest.param(
        b"",
        ImportBatch.Purpose.REVIEW,
        {"line": None, "column": "", "value": "", "reason": "The file is empty."},
        id="zero-bytes",
    ),
    pytest.param(
        b"  \n\t\n \r\n",
        ImportBatch.Purpose.REVIEW,
        {"line": None, "column": "", "value": "", "reason": "The file is empty."},
        id="whitespace-only",
    ),
    pytest.param(
        _lines(),
        ImportBatch.Purpose.REVIEW,
        {"line": 2, "column": "", "value": "", "reason": "The file has a header but no data rows."},
        id="header-only",
    ),
    pytest.param(
        b"external_id;radius;texture;lobes\nt1;10;15;3\n",
        ImportBatch.Purpose.REVIEW,
        {
            "line": 1,
            "column": "",
            "value": "external_id;radius;texture;lobes",
            "reason": "The file looks semicolon-separated; Loupe expects comma-separated values.",
        },
        id="semicolon-delimiter",
    ),
    pytest.param(
        b"external_id\tradius\ttexture\tlobes\nt1\t10\t15\t3\n",
        ImportBatch.Purpose.REVIEW,
        {
            "line": 1,
            "column": "",
            "value": "external_id\tradius\ttexture\tlobes",
            "reason": "The file looks tab-separated; Loupe expects comma-separated values.",
        },
        id="tab-delimiter",
    ),
    pytest.param(
        _lines("t1,10,15,3,2024-05-01T08:30:00", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "2024-05-01T08:30:00",
            "reason": "No time zone: add one (e.g. +00:00 or Z) so the time is unambiguous.",
        },
        id="observed-at-without-time-zone",
    ),
    pytest.param(
        _lines("t1,10,15,3,yesterday", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "yesterday",
            "reason": "Not an ISO 8601 date and time (e.g. 2024-05-01T08:30:00+02:00).",
        },
        id="observed-at-not-a-date",
    ),
    pytest.param(
        _lines("t1,10,15,3,2024-02-30T08:30:00+00:00", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "2024-02-30T08:30:00+00:00",
            "reason": "Not a real date: 2024-02-30 does not exist (check the year, month and day).",
        },
        id="observed-at-february-30",
    ),
    pytest.param(
        _lines("t1,10,15,3,0000-01-01T00:00:00+00:00", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "0000-01-01T00:00:00+00:00",
            "reason": "Not a real date: 0000-01-01 does not exist (check the year, month and day).",
        },
        id="observed-at-year-0",
    ),
    pytest.param(
        _lines("t1,10,15,3,2024-05-01T25:00:00+00:00", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "2024-05-01T25:00:00+00:00",
            "reason": "Not a real time of day: 25:00:00 does not exist (hours run 00-23, minutes and seconds 00-59).",
        },
        id="observed-at-hour-25",
    ),
    pytest.param(
        _lines("t1,10,15,3,1714552200", header=HEADER + ",observed_at"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 2,
            "column": "observed_at",
            "value": "1714552200",
            "reason": "Not an ISO 8601 date and time (e.g. 2024-05-01T08:30:00+02:00).",
        },
        id="observed-at-unix-timestamp",
    ),
    pytest.param(
        _lines("t1,10,15,3"),
        ImportBatch.Purpose.HOLDOUT,
        {"line": 1, "column": "label", "value": "", "reason": "A holdout file must have a label column."},
        id="holdout-without-label-column",
    ),
    pytest.param(
        _lines("t1,10,15,3,benign", "t2,10,15,3,", header=HEADER + ",label"),
        ImportBatch.Purpose.HOLDOUT,
        {"line": 3, "column": "label", "value": "", "reason": "Missing label (every holdout row needs one)."},
        id="holdout-with-empty-label",
    ),
    pytest.param(
        _lines("t1,10,15,3,Dr X", header=HEADER + ",notes"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 1,
            "column": "notes",
            "value": "notes",
            "reason": "Unexpected column: it is not in the dataset's schema.",
        },
        id="unexpected-extra-column",
    ),
    pytest.param(
        _lines("t1,10,15,3", "t2,10,15,3,4"),
        ImportBatch.Purpose.REVIEW,
        {"line": 3, "column": "", "value": "4", "reason": "The row has 5 fields; the header has 4."},
        id="row-with-more-fields-than-the-header",
    ),
    pytest.param(
        _lines("t1,10,15,3,", "t2,10,15,3,"),
        ImportBatch.Purpose.REVIEW,
        {"line": 2, "column": "", "value": "", "reason": "The row has 5 fields; the header has 4."},
        id="trailing-comma-on-every-row",
    ),
    pytest.param(
        _lines("t1,10,15,3", "t2,10,15"),
        ImportBatch.Purpose.REVIEW,
        {
            "line": 3,
            "column": "lobes",
            "value": "",
            "reason": "The row has 3 fields; the header has 4: lobes is missing.",
        },
        id="row-with-fewer-fields-than-the-header",
    ),
    pytest.param(_zipped(_lines("t1,10,15,3")), ImportBatch.Purpose.REVIEW, _compressed("zip"), id="zip-archive"),
    pytest.param(gzip.compress(_lines("t1,10,15,3")), ImportBatch.Purpose.REVIEW, _compressed("gzip"), id="gzip"),
    pytest.param(bz2.compress(_lines("t1,10,15,3")), ImportBatch.Purpose.REVIEW, _compressed("bzip2"), id="bzip2"),
    pytest.param(lzma.compress(_lines("t1,10,15,3")), ImportBatch.Purpose.REVIEW, _compressed("xz"), id="xz"),
    pytest.param(
        b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), ImportBatch.Purpose.REVIEW, _compressed("7z"), id="7z-archive"
    ),
    pytest.param(
        b"\x28\xb5\x2f\xfd\x20\x05\x29\x00\x00abcde", ImportBatch.Purpose.REVIEW, _compressed("zstd"), id="zstd"
    ),
]


@pytest.mark.parametrize(("data", "purpose", "expected"), REJECTED_FILES)
def test_malformed_file_is_rejected_with_a_row_level_error_and_writes_nothing(
    dataset, model_admin, data, purpose, expected
):
    errors = _reject(dataset, model_admin, data, purpose)

    assert expected in errors, errors


def test_an_excel_workbook_is_told_to_save_as_csv(dataset, model_admin):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as workbook:
        workbook.writestr("[Content_Types].xml", "<Types/>")
        workbook.writestr("xl/workbook.xml", "<workbook/>")

    errors = _reject(dataset, model_admin, out.getvalue())

    assert errors == [
        {
            "line": None,
            "column": "",
            "value": "",
            "reason": "The file is an Excel workbook, not CSV text: open it and save it as CSV UTF-8.",
        }
    ]


def test_non_utf8_byte_is_reported_on_its_line(dataset, model_admin):
    data = b"external_id,radius,texture,lobes\nt1,10,15,3\nt" + "é".encode("latin-1") + b"2,10,15,3\n"

    errors = _reject(dataset, model_admin, data)

    assert len(errors) == 1
    assert errors[0]["line"] == 3
    assert errors[0]["value"].startswith("e9")
    assert "Not valid UTF-8" in errors[0]["reason"]


def test_every_bad_row_is_reported_not_just_the_first(dataset, model_admin):
    data = _lines(
        "t1,10,15,3,benign", "t2,x,15,3,benign", "t3,10,15,1.5,benign", "t4,10,15,3,unsure", header=HEADER + ",label"
    )

    errors = _reject(dataset, model_admin, data)

    assert [(e["line"], e["column"]) for e in errors] == [(3, "radius"), (4, "lobes"), (5, "label")]


def test_id_that_already_exists_in_the_dataset_is_rejected_and_names_the_earlier_file(
    dataset, model_admin, import_rows
):
    import_rows(synthetic_rows(3, labelled=False), name="first.csv")
    clash = synthetic_rows(2, start=2, labelled=False)  # t00002 already exists, t00003 is new

    errors = _reject(dataset, model_admin, csv_bytes(clash))

    assert errors == [
        {
            "line": 2,
            "column": "external_id",
            "value": "t00002",
            "reason": "Id already exists in this dataset (imported from first.csv).",
        }
    ]
    assert not Item.objects.filter(external_id="t00003").exists()


def test_same_id_in_another_dataset_is_not_a_clash(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(2, labelled=False))
    other = Dataset.objects.create(name="Other", slug="other")
    for feature in dataset.features.all():
        other.features.create(position=feature.position, name=feature.name, dtype=feature.dtype)

    batch = import_batch_create(
        dataset=other,
        user=model_admin,
        file_name="same-ids.csv",
        data=csv_bytes(synthetic_rows(2, labelled=False)),
        purpose=ImportBatch.Purpose.REVIEW,
    )

    assert batch.rows_imported == 2
    assert Item.objects.filter(external_id="t00000").count() == 2


def test_unknown_purpose_is_refused(dataset, model_admin):
    from django.core.exceptions import ValidationError

    before = _counts()
    with pytest.raises(ValidationError):
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="x.csv", data=csv_bytes(synthetic_rows(1)), purpose="training"
        )
    assert _counts() == before


# --- The service: a good file --------------------------------------------------------------------------------


def test_good_file_writes_every_row_with_its_provenance(dataset, model_admin):
    data = _lines(
        "a1,10.5,15,3,malignant,2024-05-01T08:30:00+02:00",
        "a2,9,16,2,,2024-05-02T09:00:00Z",
        "a3,8,17,4,benign,",
        header=HEADER + ",label,observed_at",
    )
    before = _counts()

    batch = import_batch_create(
        dataset=dataset, user=model_admin, file_name="good.csv", data=data, purpose=ImportBatch.Purpose.REVIEW
    )

    assert _counts() == {
        "items": before["items"] + 3,
        "batches": before["batches"] + 1,
        "gold_labels": before["gold_labels"] + 2,
        "audit_events": before["audit_events"] + 3,  # import.queued, import.started, import.completed
    }
    assert (batch.status, batch.rows_total, batch.rows_imported, batch.rows_rejected) == ("imported", 3, 3, 0)
    assert batch.file_size == len(data)
    items = {item.external_id: item for item in batch.items.all()}
    a1 = items["a1"]
    assert a1.values == {"radius": 10.5, "texture": 15.0, "lobes": 3}
    assert (a1.source_file, a1.source_row) == ("good.csv", 2)
    assert a1.observed_at.isoformat() == "2024-05-01T06:30:00+00:00"
    # The hash covers the row as written in the file, offset included.
    assert a1.content_hash == item_content_hash(
        external_id="a1",
        values=a1.values,
        label="malignant",
        observed_at=datetime.fromisoformat("2024-05-01T08:30:00+02:00"),
    )
    assert [items[k].source_row for k in ("a1", "a2", "a3")] == [2, 3, 4]
    assert items["a3"].observed_at is None


def test_blank_lines_do_not_shift_line_numbers(dataset, model_admin):
    data = _lines("b1,10,15,3", "", "b2,10,15,3", "", "b3,oops,15,3")

    errors = _reject(dataset, model_admin, data)
    assert errors == [{"line": 6, "column": "radius", "value": "oops", "reason": "Not a number."}]

    batch = import_batch_create(
        dataset=dataset,
        user=model_admin,
        file_name="gaps.csv",
        data=_lines("b1,10,15,3", "", "b2,10,15,3", ""),
        purpose=ImportBatch.Purpose.REVIEW,
    )
    assert dict(batch.items.values_list("external_id", "source_row")) == {"b1": 2, "b2": 4}
    assert batch.rows_total == 2


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_any_line_ending_gives_the_same_line_numbers(dataset, model_admin, newline):
    bad = newline.join([HEADER, "c1,10,15,3", "c2,10,15,x", ""]).encode()
    errors = _reject(dataset, model_admin, bad)
    assert errors == [{"line": 3, "column": "lobes", "value": "x", "reason": "Not a whole number."}]

    good = newline.join([HEADER, "c1,10,15,3", "c2,10,15,4", ""]).encode()
    batch = import_batch_create(
        dataset=dataset, user=model_admin, file_name="endings.csv", data=good, purpose=ImportBatch.Purpose.REVIEW
    )
    assert dict(batch.items.values_list("external_id", "source_row")) == {"c1": 2, "c2": 3}
    assert batch.items.get(external_id="c2").values == {"radius": 10.0, "texture": 15.0, "lobes": 4}


# --- The view ------------------------------------------------------------------------------------------------


def _upload(client, dataset: Dataset, data: bytes, purpose: str = ImportBatch.Purpose.REVIEW, name: str = "upload.csv"):
    """Post the file; the import task runs (eagerly, in this process) once the upload's transaction commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            reverse("annotations:import", args=[dataset.pk]),
            {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "purpose": purpose},
        )


def _batch_page(client, response) -> str:  # type: ignore[no-untyped-def]
    """The batch page the upload redirected to."""
    batch = ImportBatch.objects.latest("pk")
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:batch_detail", args=[batch.dataset_id, batch.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.parametrize(("data", "purpose", "expected"), [p for p in REJECTED_FILES if p.id != "zero-bytes"])
def test_an_upload_is_checked_by_the_task_and_the_batch_page_shows_the_report_and_imports_nothing(
    dataset, model_admin, data, purpose, expected
):
    client = login(model_admin)
    before = _counts()

    response = _upload(client, dataset, data, purpose)

    page = _batch_page(client, response)
    assert _counts() == _after_rejection(before)
    assert "Nothing was imported" in page
    assert escape(expected["reason"]) in page
    if expected["column"]:
        assert f"<code><bdi>{expected['column']}</bdi></code>" in page
    assert expected in ImportBatch.objects.get().report["errors"]


def test_upload_page_names_the_line_of_a_non_utf8_byte(dataset, model_admin):
    data = b"external_id,radius,texture,lobes\nt1,10,15,3\nt" + "é".encode("latin-1") + b"2,10,15,3\n"
    client = login(model_admin)
    before = _counts()

    response = _upload(client, dataset, data)

    assert "Not valid UTF-8" in _batch_page(client, response)
    assert _counts() == _after_rejection(before)
    assert ImportBatch.objects.get().report["errors"][0]["line"] == 3


def test_upload_page_rejects_a_zero_byte_file(dataset, model_admin):
    client = login(model_admin)
    before = _counts()

    response = _upload(client, dataset, b"")

    assert response.status_code == 400
    assert _counts() == before
    assert "The submitted file is empty." in response.content.decode()


def test_upload_page_rejects_a_whitespace_only_file(dataset, model_admin):
    client = login(model_admin)
    before = _counts()

    response = _upload(client, dataset, b"\n  \n")

    assert "The file is empty." in _batch_page(client, response)
    assert _counts() == _after_rejection(before)


def test_upload_page_rejects_a_clashing_id(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(2, labelled=False), name="first.csv")
    client = login(model_admin)
    before = _counts()

    response = _upload(client, dataset, csv_bytes(synthetic_rows(1, labelled=False)))

    assert "Id already exists in this dataset (imported from first.csv)." in _batch_page(client, response)
    assert _counts() == _after_rejection(before)


def test_uploading_a_good_file_redirects_to_the_batch_and_writes_items_labels_and_audit(dataset, model_admin):
    rows = synthetic_rows(4, start=10) + synthetic_rows(2, start=20, labelled=False)
    data = csv_bytes(rows, columns=["external_id", "radius", "texture", "lobes", "label"])
    client = login(model_admin)

    response = _upload(client, dataset, data, name="mixed.csv")

    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])
    assert client.get(response["Location"]).status_code == 200
    assert (batch.file_name, batch.uploaded_by, batch.purpose, batch.rows_imported) == (
        "mixed.csv",
        model_admin,
        ImportBatch.Purpose.REVIEW,
        6,
    )

    items = list(Item.objects.filter(batch=batch).order_by("source_row"))
    assert [item.external_id for item in items] == [row["external_id"] for row in rows]
    assert [item.source_row for item in items] == [2, 3, 4, 5, 6, 7]
    assert all(item.source_file == "mixed.csv" for item in items)
    assert all(len(item.content_hash) == 64 for item in items)
    assert len({item.content_hash for item in items}) == 6
    for item, row in zip(items, rows, strict=True):
        assert item.content_hash == item_content_hash(
            external_id=row["external_id"], values=item.values, observed_at=None, label=row.get("label")
        )
        expected_state = Item.QueueState.DONE if "label" in row else Item.QueueState.OPEN
        assert item.queue_state == expected_state

    golds = GoldLabel.objects.filter(item__batch=batch).select_related("item", "label")
    assert {(g.item.external_id, g.label.name, g.origin) for g in golds} == {
        (row["external_id"], row["label"], GoldLabel.Origin.IMPORT) for row in rows if "label" in row
    }

    event = AuditEvent.objects.get(action="import.completed")
    assert event.actor == model_admin
    assert (event.object_type, event.object_id, event.dataset_id) == ("import_batch", str(batch.pk), dataset.pk)
    assert event.after["rows_imported"] == 6
    assert event.after["labelled_rows"] == 4
    assert event.after["file_sha256"] == batch.file_sha256


def test_uploading_a_holdout_file_sequesters_every_row(dataset, model_admin):
    rows = synthetic_rows(4, start=50)

    response = _upload(login(model_admin), dataset, csv_bytes(rows), purpose=ImportBatch.Purpose.HOLDOUT)

    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    assert batch.purpose == ImportBatch.Purpose.HOLDOUT
    assert set(Item.objects.filter(batch=batch).values_list("queue_state", flat=True)) == {Item.QueueState.HOLDOUT}
    assert GoldLabel.objects.filter(item__batch=batch, origin=GoldLabel.Origin.IMPORT).count() == 4


def test_reviewer_cannot_import(dataset, reviewer):
    response = _upload(login(reviewer), dataset, csv_bytes(synthetic_rows(2)))

    assert response.status_code == 403
    assert Item.objects.count() == 0


# --- Bytes and dates found in review --------------------------------------------------------------------------


def _import(dataset, user, data: bytes):  # type: ignore[no-untyped-def]
    return import_batch_create(dataset=dataset, user=user, file_name="f.csv", data=data, purpose="review")


def test_a_nul_byte_is_reported_with_its_line_and_nothing_is_written(dataset, model_admin):
    data = b"external_id,radius,texture,lobes\nA1,10,15,2\nA\x002,11,15,2\n"
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, data)
    error = rejected.value.result.errors[0]
    assert error.line == 3 and "NUL byte" in error.reason
    assert not Item.objects.exists()
    assert list(ImportBatch.objects.values_list("status", flat=True)) == [ImportBatch.Status.REJECTED]


def test_an_out_of_range_observed_at_is_a_row_error(dataset, model_admin):
    data = b"external_id,radius,texture,lobes,observed_at\nA1,10,15,2,0001-01-01T00:00:00+01:00\n"
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, data)
    error = rejected.value.result.errors[0]
    assert (error.line, error.column, error.reason) == (2, "observed_at", "Date is out of range.")
    assert not Item.objects.exists()


# --- Short rows ------------------------------------------------------------------------------------------------


def test_a_row_missing_several_trailing_fields_names_every_missing_column(dataset, model_admin):
    errors = _reject(dataset, model_admin, _lines("t1,10,15,3", "t2,10", "t3,10,15,3"))

    assert errors == [
        {
            "line": 3,
            "column": "texture",
            "value": "",
            "reason": "The row has 2 fields; the header has 4: texture, lobes are missing.",
        }
    ]


def test_a_short_row_missing_only_optional_trailing_columns_is_still_an_error(dataset, model_admin):
    data = _lines("t1,10,15,3,benign", "t2,10,15,3", header=HEADER + ",label")

    errors = _reject(dataset, model_admin, data)

    assert errors == [
        {
            "line": 3,
            "column": "label",
            "value": "",
            "reason": "The row has 4 fields; the header has 5: label is missing.",
        }
    ]


# --- The size of the report ------------------------------------------------------------------------------------


def test_a_long_header_name_is_echoed_shortened_with_its_length(dataset, model_admin):
    long_name = "n" * 10_000
    data = _lines("t1,10,15,3,x", header=f"{HEADER},{long_name}")

    errors = _reject(dataset, model_admin, data)

    shortened = "n" * 200 + "… (10,000 characters)"
    assert errors == [
        {
            "line": 1,
            "column": shortened,
            "value": shortened,
            "reason": "Unexpected column: it is not in the dataset's schema.",
        }
    ]


def test_a_long_value_is_echoed_shortened_with_its_length(dataset, model_admin):
    errors = _reject(dataset, model_admin, _lines("t1," + "9x" * 150 + ",15,3"))

    assert errors == [
        {"line": 2, "column": "radius", "value": "9x" * 100 + "… (300 characters)", "reason": "Not a number."}
    ]


def test_a_short_row_of_a_wide_file_names_at_most_ten_missing_columns(dataset, model_admin):
    names = [f"c{i:02d}" for i in range(30)]
    dataset.features.all().delete()
    for position, name in enumerate(names):
        dataset.features.create(position=position, name=name, dtype="float")
    header = ",".join(["external_id", *names])

    errors = _reject(dataset, model_admin, _lines("t1," + ",".join(["1"] * 30), "t2,1", header=header))

    assert errors == [
        {
            "line": 3,
            "column": "c01",
            "value": "",
            "reason": "The row has 2 fields; the header has 31: c01, c02, c03, c04, c05, c06, c07, c08, c09, c10"
            " and 19 more are missing.",
        }
    ]


def test_the_report_keeps_the_first_200_errors_and_counts_the_rest(dataset, model_admin):
    data = _lines(*(f"t{i},x,15,3" for i in range(250)))

    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, data)

    result = rejected.value.result
    assert (result.error_count, len(result.errors)) == (250, 200)
    assert result.errors[-1].line == 201


def test_upload_page_of_a_file_of_long_header_names_stays_small(dataset, model_admin):
    header = ",".join([HEADER, *(f"{i:04d}" + "h" * 5_000 for i in range(1_000))])  # a 5 MB header
    data = _lines("t1,10,15,3" + "," * 1_000, header=header)

    client = login(model_admin)
    page = _batch_page(client, _upload(client, dataset, data))

    assert len(page) < 250_000, len(page)
    assert "Nothing was imported: 1000 problems found" in page
    assert "… (5,004 characters)" in page
    assert "and 800 more problems not shown" in page


# --- A rejected upload leaves a trace --------------------------------------------------------------------------


def test_a_rejected_upload_is_recorded_with_its_report_and_audited(dataset, model_admin):
    data = _lines(
        "t1,10,15,3,benign", "t2,big,15,3,benign", "t3,10,15,x,", "t4,10,15,3,benign", header=HEADER + ",label"
    )

    with pytest.raises(ImportRejected) as rejected:
        import_batch_create(
            dataset=dataset, user=model_admin, file_name="bad.csv", data=data, purpose=ImportBatch.Purpose.HOLDOUT
        )

    batch = ImportBatch.objects.get()
    assert batch == rejected.value.batch
    assert (batch.file_name, batch.file_size, batch.uploaded_by, batch.purpose, batch.status) == (
        "bad.csv",
        len(data),
        model_admin,
        ImportBatch.Purpose.HOLDOUT,
        ImportBatch.Status.REJECTED,
    )
    assert batch.file_sha256 == hashlib.sha256(data).hexdigest()
    assert (batch.rows_total, batch.rows_imported, batch.rows_rejected) == (4, 0, 2)
    assert batch.report["error_count"] == 3
    assert [(e["line"], e["column"]) for e in batch.report["errors"]] == [(3, "radius"), (4, "lobes"), (4, "label")]
    assert not Item.objects.exists() and not GoldLabel.objects.exists()
    event = AuditEvent.objects.get(action="import.rejected")
    assert event.actor == model_admin
    assert (event.object_type, event.object_id, event.dataset_id) == ("import_batch", str(batch.pk), dataset.pk)
    assert event.after == {
        "file_name": "bad.csv",
        "file_sha256": batch.file_sha256,
        "file_size": len(data),
        "purpose": ImportBatch.Purpose.HOLDOUT,
        "rows_total": 4,
        "rows_rejected": 2,
        "error_count": 3,
    }


def test_an_id_clash_is_recorded_as_a_rejected_batch_and_the_earlier_rows_are_untouched(
    dataset, model_admin, import_rows
):
    first = import_rows(synthetic_rows(2, labelled=False), name="first.csv")

    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, csv_bytes(synthetic_rows(1, labelled=False)))

    batch = rejected.value.batch
    assert (batch.status, batch.rows_total, batch.rows_imported, batch.rows_rejected) == ("rejected", 1, 0, 1)
    assert batch.report["errors"][0]["reason"] == "Id already exists in this dataset (imported from first.csv)."
    assert list(Item.objects.values_list("batch", flat=True)) == [first.pk, first.pk]
    assert AuditEvent.objects.filter(action="import.rejected", object_id=str(batch.pk)).count() == 1


def test_a_compressed_upload_is_recorded_with_no_rows_read(dataset, model_admin):
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, gzip.compress(_lines("t1,10,15,3")))

    batch = rejected.value.batch
    assert (batch.status, batch.rows_total, batch.rows_rejected, batch.report["error_count"]) == ("rejected", 0, 0, 1)


def test_upload_page_leads_to_the_recorded_rejection_and_its_page_shows_the_report(dataset, model_admin):
    client = login(model_admin)

    response = _upload(client, dataset, _lines("t1,10,15,3", "t2,big,15,3"), name="typo.csv")

    page = _batch_page(client, response)
    ImportBatch.objects.get(status=ImportBatch.Status.REJECTED)
    assert "Rejected" in page
    assert (
        "<td>3</td><td><code><bdi>radius</bdi></code></td><td><code><bdi>big</bdi></code></td><td>Not a number.</td>"
        in page
    )


def test_a_report_of_more_problems_than_kept_says_so_on_the_batch_page(dataset, model_admin):
    client = login(model_admin)

    _upload(client, dataset, _lines(*(f"t{i},x,15,3" for i in range(250))))

    batch = ImportBatch.objects.get()
    page = client.get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert "250 problems found" in page
    assert "and 50 more problems not shown" in page
