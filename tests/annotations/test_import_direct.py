"""Clean files on PostgreSQL go straight into items (annotations/import_direct.py), keys checked per batch.

The other import tests run inside a test transaction, where the writer thread
could not see the batch, so they drive the staging path; these commit for real
(transactional_db) to drive the direct one: the same items, gold labels,
hashes, counters and audit events; the same reports for ids that clash, at the
same lines; nothing written for a bad file; and the foreign keys checked per
batch (annotations/import_integrity.py) refuse a reference that is gone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import IntegrityError, connection, transaction

from annotations import import_direct, import_integrity, imports
from annotations.counters import counts_recount, dataset_counts
from annotations.import_integrity import bypass_possible, references_check
from annotations.imports import ImportRejected, import_batch_create, item_content_hash
from annotations.models import Dataset, GoldLabel, ImportBatch, ImportStagedRow, Item
from governance.audit_chain import verify_chain
from governance.models import AuditEvent
from tests.conftest import csv_bytes, synthetic_rows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct path is PostgreSQL's"),
]


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def small_chunks(monkeypatch):
    """Two rows per chunk, so that a few rows make several COPYs and a problem can come after the first."""
    monkeypatch.setattr(imports, "STAGE_CHUNK_ROWS", 2)


def _import(dataset: Dataset, user, rows: list[dict], name: str = "rows.csv") -> ImportBatch:  # type: ignore[no-untyped-def]
    return import_batch_create(dataset=dataset, user=user, file_name=name, data=csv_bytes(rows), purpose="review")


def _items(batch: ImportBatch) -> list[tuple]:
    return list(
        Item.objects.filter(batch=batch)
        .order_by("source_row")
        .values_list("external_id", "values", "source_row", "content_hash", "queue_state", "observed_at")
    )


@pytest.mark.parametrize("skip_row_triggers", [True, False], ids=["keys-per-batch", "keys-per-row"])
def test_a_clean_file_goes_straight_into_items_as_the_staging_path_would_write_it(
    dataset, model_admin, small_chunks, monkeypatch, skip_row_triggers
):
    if not skip_row_triggers:  # a database role without the privilege: the triggers check every row
        monkeypatch.setattr(import_direct, "bypass_possible", lambda: False)
    rows = synthetic_rows(7, labelled=True)
    rows[3]["label"] = ""  # one row without a label: open, no gold label

    batch = _import(dataset, model_admin, rows)

    assert batch.report["seconds"]["writer"] == "direct"
    assert (batch.status, batch.rows_imported, batch.report["labelled_rows"]) == ("imported", 7, 6)
    items = _items(batch)
    assert [item[0] for item in items] == [row["external_id"] for row in rows]
    assert [item[2] for item in items] == list(range(2, 9))
    labels = {label.pk: label.name for label in dataset.label_classes.all()}
    gold = dict(GoldLabel.objects.filter(item__batch=batch).values_list("item__external_id", "label_id"))
    assert {key: labels[value] for key, value in gold.items()} == {
        row["external_id"]: row["label"] for row in rows if row["label"]
    }
    assert set(GoldLabel.objects.values_list("origin", "dataset_id")) == {("import", dataset.pk)}
    for (external_id, values, _, content_hash, state, observed_at), row in zip(items, rows, strict=True):
        expected = {"radius": float(row["radius"]), "texture": float(row["texture"]), "lobes": row["lobes"]}
        assert values == expected
        assert state == ("done" if row["label"] else "open")
        label = row["label"] or None
        assert content_hash == item_content_hash(
            external_id=external_id, values=expected, observed_at=observed_at, label=label
        )
    assert dict(dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]) == counts_recount(dataset_id=dataset.pk)
    assert not ImportStagedRow.objects.exists()
    assert AuditEvent.objects.filter(action="import.completed", object_id=str(batch.pk)).count() == 1
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None
    with connection.cursor() as cursor:  # SET LOCAL ended with the transaction
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


def test_an_id_repeated_in_a_clean_file_is_reported_at_its_line_and_nothing_is_written(
    dataset, model_admin, small_chunks
):
    rows = synthetic_rows(6)
    rows[4]["external_id"] = rows[1]["external_id"]  # line 6 repeats line 3, in a later chunk

    with pytest.raises(ImportRejected) as refused:
        _import(dataset, model_admin, rows)

    assert [error.as_dict() for error in refused.value.result.errors] == [
        {"line": 6, "column": "external_id", "value": "t00001", "reason": "Duplicate id: already on line 3."}
    ]
    assert not Item.objects.exists() and not GoldLabel.objects.exists() and not ImportStagedRow.objects.exists()
    assert refused.value.batch.status == ImportBatch.Status.REJECTED


def test_an_id_the_dataset_already_has_is_reported_as_a_clash_and_nothing_more_is_written(
    dataset, model_admin, small_chunks
):
    first = _import(dataset, model_admin, synthetic_rows(4, start=0), name="first.csv")

    with pytest.raises(ImportRejected) as refused:
        _import(dataset, model_admin, synthetic_rows(4, start=3), name="second.csv")  # t00003 clashes

    assert [error.as_dict() for error in refused.value.result.errors] == [
        {
            "line": 2,
            "column": "external_id",
            "value": "t00003",
            "reason": "Id already exists in this dataset (imported from first.csv).",
        }
    ]
    assert set(Item.objects.values_list("batch", flat=True)) == {first.pk}
    assert Item.objects.count() == 4 and GoldLabel.objects.count() == 4
    assert dict(dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]) == counts_recount(dataset_id=dataset.pk)


def test_a_bad_cell_after_the_first_chunks_rolls_back_what_was_written(dataset, model_admin, small_chunks):
    rows = synthetic_rows(7)
    rows[5]["radius"] = "big"

    with pytest.raises(ImportRejected) as refused:
        _import(dataset, model_admin, rows)

    assert [(error.line, error.column, error.reason) for error in refused.value.result.errors] == [
        (7, "radius", "Not a number.")
    ]
    assert not Item.objects.exists() and not GoldLabel.objects.exists() and not ImportStagedRow.objects.exists()


def test_a_file_the_fast_reader_refuses_is_read_line_by_line_and_staged(dataset, model_admin, small_chunks):
    data = csv_bytes(synthetic_rows(5)).replace(b"\nt00002", b"\n\nt00002")  # a blank line: only the exact reader

    batch = import_batch_create(dataset=dataset, user=model_admin, file_name="a.csv", data=data, purpose="review")

    assert batch.report["seconds"]["reader"] == "exact" and "writer" not in batch.report["seconds"]
    assert list(Item.objects.order_by("source_row").values_list("source_row", flat=True)) == [2, 3, 5, 6, 7]


def test_the_set_based_key_checks_are_used_where_the_role_may_skip_the_row_triggers(dataset):
    assert bypass_possible(), "the test database's role is a superuser"


def test_the_row_triggers_are_kept_when_the_schema_is_not_the_one_the_checks_know(dataset, monkeypatch):
    expected = import_integrity._expected()
    del expected[Item]["leased_to"]
    monkeypatch.setattr(import_integrity, "_expected", lambda: expected)

    assert not bypass_possible()


def test_the_set_based_key_checks_refuse_a_reference_that_is_gone(dataset, model_admin):
    batch = _import(dataset, model_admin, synthetic_rows(2))
    label = dataset.label_classes.first()

    with transaction.atomic():
        references_check(dataset_id=dataset.pk, batch_id=batch.pk, label_ids=[label.pk])  # all there
    for missing in [
        {"dataset_id": 999_999_999, "batch_id": batch.pk, "label_ids": []},
        {"dataset_id": dataset.pk, "batch_id": 999_999_999, "label_ids": []},
        {"dataset_id": dataset.pk, "batch_id": batch.pk, "label_ids": [label.pk, 999_999_999]},
    ]:
        with pytest.raises(IntegrityError, match="no longer exist"), transaction.atomic():
            references_check(**missing)


def test_ids_with_quotes_backslashes_and_accents_and_observed_times_go_in_as_written(
    dataset, model_admin, small_chunks
):
    rows = synthetic_rows(5, labelled=True)
    awkward = ["back\\slash", 'quote "d"', "comma, inside", "accents éü 日本", "\\N"]
    observed = ["2026-03-01T08:15:00+01:00", "", "2026-03-02 23:59:59Z", "", "2026-03-03T00:00:00.250+00:00"]
    for row, external_id, moment in zip(rows, awkward, observed, strict=True):
        row["external_id"], row["observed_at"] = external_id, moment
    body = io.StringIO()
    writer = csv.DictWriter(body, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)

    batch = import_batch_create(
        dataset=dataset, user=model_admin, file_name="awkward.csv", data=body.getvalue().encode(), purpose="review"
    )

    assert batch.report["seconds"]["writer"] == "direct"
    items = _items(batch)
    assert [item[0] for item in items] == awkward
    expected_moments = [dt.datetime.fromisoformat(m.replace("Z", "+00:00")) if m else None for m in observed]
    assert [item[5] for item in items] == expected_moments
    for external_id, values, _, content_hash, _, observed_at in items:
        row = next(r for r in rows if r["external_id"] == external_id)
        assert content_hash == item_content_hash(
            external_id=external_id, values=values, observed_at=observed_at, label=row["label"]
        )
    assert dict(dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]) == counts_recount(dataset_id=dataset.pk)
