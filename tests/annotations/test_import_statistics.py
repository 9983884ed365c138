"""A large import refreshes the planner's statistics in its own transaction (annotations/import_statistics.py).

A million-row file into a new dataset had its leakage probe planned on statistics
that believed the dataset held one item, and did not finish. These tests hold the
rule (analyse when the batch is more than twice the planner's belief, from
MIN_ROWS on), that the statistics count the transaction's own uncommitted rows,
that a held lock skips the refresh without breaking the import's transaction, and
that the direct path does it before its checks.
"""

from __future__ import annotations

import pytest
from django.db import connection

from annotations import import_statistics, imports
from annotations.import_statistics import item_statistics_refresh, planner_item_estimate
from annotations.imports import import_batch_create
from annotations.models import Item
from tests.helpers import csv_bytes, database_connect, synthetic_rows

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner statistics")

ROWS = 60


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(import_statistics, "MIN_ROWS", 10)


def _analyse_items() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Item._meta.db_table}")


def _import(dataset, user, n: int, prefix: str = "s"):  # type: ignore[no-untyped-def]
    rows = synthetic_rows(n, prefix=prefix)
    return import_batch_create(dataset=dataset, user=user, file_name="rows.csv", data=csv_bytes(rows), purpose="review")


def _lock_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_batch_far_beyond_the_planners_belief_is_analysed_with_the_transactions_own_rows(
    dataset, model_admin, small_threshold
):
    _analyse_items()  # the statistics know no item of this dataset
    _import(dataset, model_admin, ROWS)  # staged: the rows are items of the test's open transaction
    assert Item.objects.filter(dataset=dataset).count() == ROWS
    assert planner_item_estimate(dataset.pk) * 2 < ROWS

    assert item_statistics_refresh(dataset_id=dataset.pk, rows_written=ROWS) is True

    # Uncommitted, yet counted: ANALYZE samples its own transaction's rows.
    assert planner_item_estimate(dataset.pk) == pytest.approx(ROWS, rel=0.2)


@pytest.mark.django_db
def test_a_small_batch_or_one_the_planner_expects_leaves_the_statistics_alone(dataset, model_admin, monkeypatch):
    _analyse_items()
    _import(dataset, model_admin, ROWS)
    before = planner_item_estimate(dataset.pk)

    monkeypatch.setattr(import_statistics, "MIN_ROWS", ROWS + 1)
    assert item_statistics_refresh(dataset_id=dataset.pk, rows_written=ROWS) is False
    assert planner_item_estimate(dataset.pk) == before

    monkeypatch.setattr(import_statistics, "MIN_ROWS", 10)
    _analyse_items()  # now the planner knows the ROWS items
    assert item_statistics_refresh(dataset_id=dataset.pk, rows_written=2 * ROWS) is False  # not more than twice


@pytest.mark.django_db
def test_a_held_analyze_lock_skips_the_refresh_and_leaves_the_transaction_usable(
    dataset, model_admin, small_threshold, monkeypatch
):
    monkeypatch.setattr(import_statistics, "LOCK_WAIT", "50ms")
    # No ANALYZE here first: the test's own transaction would then hold the lock the other connection takes.
    _import(dataset, model_admin, ROWS)
    assert planner_item_estimate(dataset.pk) * 2 < ROWS  # a new dataset: the statistics know none of its items
    timeout_before = _lock_timeout()
    holder = database_connect()
    try:
        # What another import's ANALYZE holds until it commits (lock_timeout: never wait on this test).
        holder.execute("SET lock_timeout = '5s'")
        holder.execute(f"LOCK TABLE {Item._meta.db_table} IN SHARE UPDATE EXCLUSIVE MODE")

        assert item_statistics_refresh(dataset_id=dataset.pk, rows_written=ROWS) is False
    finally:
        holder.rollback()
        holder.close()

    assert _lock_timeout() == timeout_before
    assert Item.objects.filter(dataset=dataset).count() == ROWS  # the savepoint rolled back only the ANALYZE
    assert planner_item_estimate(dataset.pk) * 2 < ROWS


@pytest.mark.django_db(transaction=True)
def test_the_direct_path_refreshes_the_statistics_before_its_checks(dataset, model_admin, small_threshold):
    assert imports.DIRECT_WRITES
    _analyse_items()

    batch = _import(dataset, model_admin, ROWS)

    seconds = batch.report["seconds"]
    assert (batch.status, seconds["writer"]) == ("imported", "direct")
    assert "statistics" in seconds
    assert planner_item_estimate(dataset.pk) == pytest.approx(ROWS, rel=0.2)

    # The next batch of the same size is no surprise to the planner: no ANALYZE.
    again = _import(dataset, model_admin, ROWS, prefix="u")
    assert again.status == "imported" and "statistics" not in again.report["seconds"]
