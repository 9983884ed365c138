"""No leakage at import (issue 9, point 6): holdout and review pool never share a row's feature values.

A row is compared by the hash of its feature values alone (Item.feature_hash),
not by its id: across holdout and pool it is refused with a row-level error and
nothing is written; within one set (another import, or the same file) it is
imported with a warning in the batch report; a pool row within a hundredth of a
standard deviation of a holdout row is a near-duplicate warning. Most tests run
in the test transaction (the staging path, on both databases); the last one
commits for real to drive PostgreSQL's direct COPY path.
"""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.urls import reverse
from django.utils.html import escape

from annotations.counters import dataset_counts
from annotations.feature_hash import feature_hash_of
from annotations.import_leakage import MAX_REPORTED_WARNINGS
from annotations.imports import ImportRejected, import_batch_create
from annotations.models import Dataset, GoldLabel, ImportBatch, Item
from governance.models import AuditEvent
from tests.conftest import login

FEATURES = [("radius", "float"), ("texture", "float"), ("lobes", "integer")]
HOLDOUT = [
    {"external_id": "H-1", "radius": 10.0, "texture": 20.25, "lobes": 3, "label": "benign"},
    {"external_id": "H-2", "radius": 12.5, "texture": 14.0, "lobes": 2, "label": "malignant"},
    {"external_id": "H-3", "radius": 16.0, "texture": 18.5, "lobes": 4, "label": "malignant"},
    {"external_id": "H-4", "radius": 18.0, "texture": 11.0, "lobes": 5, "label": "benign"},
]


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


def _csv(records: list[dict], columns: list[str] | None = None) -> bytes:
    columns = columns or list(records[0])
    return (
        "\n".join([",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in records]) + "\n"
    ).encode()


def _jsonl(records: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def _import(dataset: Dataset, user, data: bytes, purpose: str, name: str = "rows.csv") -> ImportBatch:  # type: ignore[no-untyped-def]
    return import_batch_create(dataset=dataset, user=user, file_name=name, data=data, purpose=purpose)


def _state(dataset: Dataset) -> dict:
    return {
        "items": list(Item.objects.order_by("pk").values_list("external_id", "queue_state")),
        "gold_labels": GoldLabel.objects.count(),
        "counters": dict(dataset_counts(dataset_ids=[dataset.pk])[dataset.pk]),
        "batches": ImportBatch.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


def _refused(dataset: Dataset, user, data: bytes, purpose: str, name: str = "rows.csv") -> list[dict]:  # type: ignore[no-untyped-def]
    """Import `data`, expect it refused with nothing written but its record, and return the reported errors."""
    before = _state(dataset)
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, user, data, purpose, name)
    after = _state(dataset)
    # One more batch (rejected) and its events (queued, started, rejected); no item, label or counter moved.
    assert after == {**before, "batches": before["batches"] + 1, "audit_events": before["audit_events"] + 3}
    batch = rejected.value.batch
    assert batch.status == ImportBatch.Status.REJECTED
    assert AuditEvent.objects.filter(action="import.rejected", object_id=str(batch.pk)).exists()
    return [error.as_dict() for error in rejected.value.result.errors]


def test_a_holdout_row_reimported_under_a_new_id_into_the_pool_is_refused_and_nothing_changes(dataset, model_admin):
    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    # H-2's values under a new id, a different label and the columns in another order.
    leaked = {"external_id": "P-2", "lobes": 2, "texture": 14.0, "radius": 12.5, "label": "benign"}
    clean = {"external_id": "P-1", "lobes": 3, "texture": 30.0, "radius": 7.0, "label": ""}

    errors = _refused(dataset, model_admin, _csv([clean, leaked]), "review")

    assert errors == [
        {
            "line": 3,
            "column": "external_id",
            "value": "P-2",
            "reason": "Leakage: the row's feature values are those of item H-2, which is in the sequestered holdout; "
            "a row cannot be in both the holdout and the review pool.",
        }
    ]


def test_a_pool_row_reimported_into_the_holdout_is_refused_naming_the_pool_item(dataset, model_admin):
    pool = [{"external_id": "P-1", "radius": 11.0, "texture": 17.0, "lobes": 2}]
    _import(dataset, model_admin, _csv(pool), "review", "pool.csv")
    again = [{**HOLDOUT[0]}, {"external_id": "H-9", "radius": 11.0, "texture": 17.0, "lobes": 2, "label": "benign"}]

    [error] = _refused(dataset, model_admin, _jsonl(again), "holdout", "holdout.jsonl")

    assert (error["line"], error["value"]) == (2, "H-9"), "JSON Lines: the file's own line"
    assert "item P-1, which is in the review pool" in error["reason"]
    assert error["reason"].startswith("Leakage:")


def test_an_exact_duplicate_within_the_pool_is_imported_with_a_warning(dataset, model_admin):
    first = [{"external_id": "P-1", "radius": 11.0, "texture": 17.0, "lobes": 2}]
    _import(dataset, model_admin, _csv(first), "review", "first.csv")
    second = [
        {"external_id": "Q-1", "radius": 11.0, "texture": 17.0, "lobes": 2},  # P-1 again, new id
        {"external_id": "Q-2", "radius": 9.0, "texture": 12.0, "lobes": 3},
        {"external_id": "Q-3", "radius": 9.0, "texture": 12.0, "lobes": 3},  # Q-2 again, same file
    ]

    batch = _import(dataset, model_admin, _csv(second), "review", "second.csv")

    assert (batch.status, batch.rows_imported) == (ImportBatch.Status.IMPORTED, 3)
    assert batch.report["warning_count"] == 2
    assert [(w["line"], w["value"]) for w in batch.report["warnings"]] == [(2, "Q-1"), (4, "Q-3")]
    assert "item P-1, already in the review pool" in batch.report["warnings"][0]["reason"]
    assert "those of line 3 of this file" in batch.report["warnings"][1]["reason"]
    hashes = dict(Item.objects.values_list("external_id", "feature_hash"))
    assert hashes["P-1"] == hashes["Q-1"] != hashes["Q-2"] == hashes["Q-3"]
    page = login(model_admin).get(reverse("annotations:batch_detail", args=[dataset.pk, batch.pk])).content.decode()
    assert "Imported, with 2 warnings" in page
    assert escape(batch.report["warnings"][0]["reason"]) in page


def test_a_pool_row_close_to_a_holdout_row_is_a_near_duplicate_warning_and_a_far_one_is_not(dataset, model_admin):
    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    near = {"external_id": "P-1", "radius": 16.001, "texture": 18.5, "lobes": 4}  # H-3, rounded differently
    far = {"external_id": "P-2", "radius": 16.5, "texture": 18.5, "lobes": 4}

    batch = _import(dataset, model_admin, _csv([far, near]), "review")

    assert batch.status == ImportBatch.Status.IMPORTED
    [warning] = batch.report["warnings"]
    assert (warning["line"], warning["value"]) == (3, "P-1")
    assert warning["reason"].startswith("Near-duplicate: within 0.000 standard deviations")
    assert warning["reason"].endswith("of holdout item H-3.")


def test_the_feature_hash_ignores_column_order_format_id_label_and_time(dataset, model_admin):
    row = {"external_id": "P-1", "radius": 12.5, "texture": 14.0, "lobes": 2, "observed_at": "2026-01-02T03:04:05Z"}
    _import(dataset, model_admin, _csv([row]), "review", "a.csv")
    reordered = {
        "lobes": 2,
        "observed_at": "2025-05-05T00:00:00Z",
        "texture": 14.0,
        "external_id": "P-2",
        "radius": 12.5,
    }
    _import(dataset, model_admin, _jsonl([reordered]), "review", "b.jsonl")
    labelled = {"radius": "12.50", "external_id": "P-3", "lobes": "2", "texture": "14", "label": "benign"}
    _import(dataset, model_admin, _csv([labelled]), "review", "c.csv")

    hashes = set(Item.objects.values_list("feature_hash", flat=True))
    assert hashes == {feature_hash_of({"radius": 12.5, "texture": 14.0, "lobes": 2}, FEATURES)}
    assert len(set(Item.objects.values_list("content_hash", flat=True))) == 3, "the content hash still tells them apart"


def test_the_data_migration_fills_the_hash_of_items_imported_before_it_as_an_import_would(dataset, model_admin):
    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    imported = dict(Item.objects.values_list("external_id", "feature_hash"))
    Item.objects.update(feature_hash=None)
    fill = importlib.import_module("annotations.migrations.0021_item_feature_hash_fill")

    # What RunPython hands it (it reads only the editor's connection; SQLite's real editor cannot open
    # inside the test transaction).
    fill.forwards(django_apps, SimpleNamespace(connection=connection))

    assert dict(Item.objects.values_list("external_id", "feature_hash")) == imported
    assert None not in imported.values()


def test_warnings_are_capped_and_all_counted(dataset, model_admin):
    rows = [{"external_id": f"P-{i}", "radius": 11.0, "texture": 17.0, "lobes": 2} for i in range(150)]

    batch = _import(dataset, model_admin, _csv(rows), "review")

    assert batch.report["warning_count"] == 149
    assert len(batch.report["warnings"]) == MAX_REPORTED_WARNINGS


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct COPY path is PostgreSQL's")
def test_on_the_direct_path_a_leak_is_refused_with_its_line_and_a_clean_file_keeps_its_warnings(dataset, model_admin):
    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    leaked = [{"external_id": "P-1", "radius": 7.0, "texture": 9.0, "lobes": 1}, {**HOLDOUT[3], "external_id": "P-4"}]

    [error] = _refused(dataset, model_admin, _csv(leaked), "review")

    assert (error["line"], error["value"]) == (3, "P-4") and "item H-4, which is in the sequestered holdout" in error[
        "reason"
    ]
    twice = [{"external_id": f"P-{i}", "radius": 7.0, "texture": 9.0, "lobes": 1} for i in (1, 2)]
    batch = _import(dataset, model_admin, _csv(twice), "review")
    assert batch.report["seconds"]["writer"] == "direct"
    assert [(w["line"], w["value"]) for w in batch.report["warnings"]] == [(3, "P-2")]
    assert Item.objects.filter(batch=batch).exclude(feature_hash=None).count() == 2


def test_a_pool_of_repeated_rows_is_checked_against_the_holdout_by_its_own_small_index(dataset, model_admin):
    """Rows that repeat (few distinct feature values) put many pool items under one hash; the holdout probe
    must not walk them (a 1,000-row import took 1.2 s at a million items): it reads item_holdout_feature_hash."""
    from annotations.import_leakage import _matches

    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    repeated = [{"external_id": f"P-{n}", "radius": 7.0, "texture": 30.0, "lobes": 3} for n in range(60)]
    _import(dataset, model_admin, _csv(repeated), "review", "repeated.csv")
    leaked = {"external_id": "P-leak", "radius": 10.0, "texture": 20.25, "lobes": 3}  # H-1's values
    batch = _import(dataset, model_admin, _csv([{**repeated[0], "external_id": "P-new"}]), "review")

    # The repeated rows are in the pool only: no leak found through them.
    assert _matches(source="items", batch_id=batch.pk, dataset_id=dataset.pk, other_set=True, holdout=False) == []
    [error] = _refused(dataset, model_admin, _csv([{**repeated[0], "external_id": "P-x"}, leaked]), "review")
    assert (error["line"], error["value"]) == (3, "P-leak") and "item H-1" in error["reason"]

    if connection.vendor == "postgresql":  # the plan of the check's own statement
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            _matches(source="items", batch_id=batch.pk, dataset_id=dataset.pk, other_set=True, holdout=False)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a few dozen rows: the planner would scan them
            cursor.execute(f"EXPLAIN {queries.captured_queries[-1]['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "item_holdout_feature_hash" in plan, plan


def test_rows_that_repeat_are_probed_once_per_distinct_value_not_once_per_row(dataset, model_admin):
    """On the direct path a batch's own rows are in the index: probing per row made repeated rows quadratic
    (20,000 rows of 20 distinct values took 4.1 s). One probe per distinct hash, each line still named."""
    from annotations.import_leakage import _matches

    _import(dataset, model_admin, _csv([{"external_id": "P-0", "radius": 1.0, "texture": 2.0, "lobes": 1}]), "review")
    repeated = [
        {"external_id": f"R-{n}", "radius": 1.0 if n % 2 else 5.0, "texture": 2.0, "lobes": 1} for n in range(200)
    ]
    batch = _import(dataset, model_admin, _csv(repeated), "review", "repeated.csv")

    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        found = _matches(source="items", batch_id=batch.pk, dataset_id=dataset.pk, other_set=False, holdout=False)

    # Every odd row has P-0's values (radius 1.0); the even ones match nothing earlier.
    assert [(line, external_id) for line, external_id, _ in found] == [(n + 2, f"R-{n}") for n in range(1, 200, 2)]
    assert {existing for _, _, existing in found} == {"P-0"}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {queries.captured_queries[-1]['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        probes = [line for line in plan.splitlines() if "annotations_item i" in line and "loops=" in line]
        assert probes and all(line.rstrip().endswith("loops=2)") for line in probes), plan


def test_a_batch_larger_than_the_others_together_is_matched_from_their_side_with_the_same_result(dataset, model_admin):
    """A million-row file of repeated values spent 5 of its 28 s probing its own rows per hash; a batch larger
    than every other batch of the dataset together is matched from the others' hashes instead (by batch)."""
    from django.test.utils import CaptureQueriesContext

    from annotations.import_leakage import _matches

    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    _import(dataset, model_admin, _csv([{"external_id": "P-0", "radius": 1.0, "texture": 2.0, "lobes": 1}]), "review")
    repeated = [
        {"external_id": f"R-{n}", "radius": 1.0 if n % 2 else 5.0, "texture": 2.0, "lobes": 1} for n in range(40)
    ]
    batch = _import(dataset, model_admin, _csv(repeated), "review", "repeated.csv")
    assert batch.rows_total == 40

    for other_set in (False, True):
        ask = {"source": "items", "batch_id": batch.pk, "dataset_id": dataset.pk, "other_set": other_set}
        probed = _matches(**ask, holdout=False)  # rows_total unknown: the probe per hash of this batch
        with CaptureQueriesContext(connection) as queries:
            from_the_others = _matches(**ask, holdout=False, rows_total=batch.rows_total)
        assert "MIN(" in queries.captured_queries[-1]["sql"]
        assert from_the_others == probed
        if not other_set:
            assert [(line, existing) for line, _, existing in probed] == [(n + 2, "P-0") for n in range(1, 40, 2)]
        else:
            assert probed == []  # no row of the pool has a holdout row's values


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the direct COPY path is PostgreSQL's")
def test_on_the_direct_path_a_file_larger_than_the_dataset_is_checked_from_the_others_side(dataset, model_admin):
    _import(dataset, model_admin, _csv(HOLDOUT), "holdout", "holdout.csv")
    _import(dataset, model_admin, _csv([{"external_id": "P-0", "radius": 1.0, "texture": 2.0, "lobes": 1}]), "review")
    rows = [
        {"external_id": f"R-{n}", "radius": 1.0 if n % 3 == 0 else 5.0 + n, "texture": 2.0, "lobes": 1}
        for n in range(9)
    ]

    # 7 rows against the 5 already imported: checked from the others' side, then staged for the full report.
    [error] = _refused(dataset, model_admin, _csv([*rows[:6], {**HOLDOUT[1], "external_id": "R-leak"}]), "review")
    assert (error["line"], error["value"]) == (8, "R-leak") and "item H-2" in error["reason"]
    batch = _import(dataset, model_admin, _csv(rows), "review", "large.csv")

    assert batch.report["seconds"]["writer"] == "direct"
    found = [(w["line"], w["value"]) for w in batch.report["warnings"] if "item P-0" in w["reason"]]
    assert found == [(2, "R-0"), (5, "R-3"), (8, "R-6")]


def test_past_so_many_other_batches_the_probe_per_hash_is_used(dataset, model_admin, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    from annotations import import_leakage

    for n in range(3):
        row = {"external_id": f"P-{n}", "radius": 1.0 + n, "texture": 2.0, "lobes": 1}
        _import(dataset, model_admin, _csv([row]), "review", f"p{n}.csv")
    rows = [{"external_id": f"R-{n}", "radius": 1.0 + n % 3, "texture": 2.0, "lobes": 1} for n in range(9)]
    batch = _import(dataset, model_admin, _csv(rows), "review", "large.csv")
    ask = {"source": "items", "batch_id": batch.pk, "dataset_id": dataset.pk, "other_set": False, "holdout": False}

    monkeypatch.setattr(import_leakage, "MAX_OTHER_BATCHES", 2)
    with CaptureQueriesContext(connection) as queries:
        probed = import_leakage._matches(**ask, rows_total=9)

    assert "MIN(" not in queries.captured_queries[-1]["sql"]
    assert [(line, existing) for line, _, existing in probed] == [(n + 2, f"P-{n % 3}") for n in range(9)]
