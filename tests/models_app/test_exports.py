"""Exports (issue 7, point 4): items, reviews and snapshots as CSV, JSONL and Parquet, streamed and audited."""

from __future__ import annotations

import csv
import io
import json
from unittest import mock

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotations.models import GoldLabel, Item, Review
from annotations.queue import queue_next_item
from annotations.services import review_submit
from governance.models import AuditEvent
from models_app import exports
from models_app.data import labels_hash
from models_app.models import DatasetSnapshot, SnapshotLabel
from tests.helpers import answer_for, login
from workflow_site.csv_safety import neutralise_formula


def _download(client, dataset, **params) -> bytes:  # type: ignore[no-untyped-def]
    response = client.get(reverse("models_app:export", args=[dataset.pk]), params)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_an_items_csv_has_every_item_once_with_its_gold_label(trained_dataset, model_admin):
    rows = _csv_rows(_download(login(model_admin), trained_dataset, kind="items", format="csv"))

    items = Item.objects.filter(dataset=trained_dataset)
    assert sorted(r["external_id"] for r in rows) == sorted(items.values_list("external_id", flat=True))
    gold = dict(GoldLabel.objects.filter(dataset=trained_dataset).values_list("item__external_id", "label__name"))
    assert {r["external_id"]: r["label"] for r in rows if r["label"]} == gold
    feature = trained_dataset.features.order_by("position").first()
    first = items.order_by("pk").first()
    row = next(r for r in rows if r["external_id"] == first.external_id)
    assert float(row[feature.name]) == pytest.approx(first.values[feature.name])


def test_reviews_export_as_json_lines_with_what_was_shown_and_why(trained_dataset, reviewer, auditor):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    review = review_submit(
        item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, accept=False, reason="=1+1 looks off")
    )
    auditor_client = login(auditor)

    lines = _download(auditor_client, trained_dataset, kind="reviews", format="jsonl").decode().splitlines()

    exported = [json.loads(line) for line in lines]
    assert len(exported) == Review.objects.filter(item__dataset=trained_dataset).count()
    mine = next(r for r in exported if r["review_id"] == review.pk)
    assert mine["reviewer"] == "reviewer"
    assert mine["external_id"] == queued.item.external_id
    assert mine["decision"] == review.decision
    assert mine["shown_label"] == queued.item.predicted_label.name
    assert mine["selection_strategy"] == review.selection_strategy
    assert mine["reason"] == "=1+1 looks off", "JSON is data, not a spreadsheet: nothing to neutralise"
    assert mine["supersedes_review_id"] is None and isinstance(mine["time_on_item_ms"], int)


def test_an_undone_answer_exports_as_two_reviews_the_later_superseding_the_first(trained_dataset, reviewer, auditor):
    from annotations.services import review_revise

    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    first = review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item))
    undo = review_revise(review_id=first.pk, reviewer=reviewer, answer=None)

    lines = _download(login(auditor), trained_dataset, kind="reviews", format="jsonl").decode().splitlines()

    exported = {row["review_id"]: row for row in map(json.loads, lines)}
    assert exported[undo.pk]["decision"] == "withdrawn"
    assert exported[undo.pk]["supersedes_review_id"] == first.pk
    assert exported[first.pk]["supersedes_review_id"] is None


def test_formula_like_text_is_neutralised_in_csv_but_numbers_stay_numbers(trained_dataset, reviewer, model_admin):
    queued = queue_next_item(dataset=trained_dataset, reviewer=reviewer)
    review_submit(item_id=queued.item.pk, reviewer=reviewer, answer=answer_for(queued.item, reason='=HYPERLINK("x")'))

    rows = _csv_rows(_download(login(model_admin), trained_dataset, kind="reviews", format="csv"))

    assert [r["reason"] for r in rows if r["reason"]] == ['\'=HYPERLINK("x")']
    for text in ["=1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralise_formula(text) == "'" + text
    assert neutralise_formula(-1.5) == -1.5
    assert neutralise_formula("benign") == "benign"


def test_a_snapshot_exports_exactly_its_frozen_labels_in_parquet_and_says_its_hash(trained_dataset, model_admin):
    snapshot = DatasetSnapshot.objects.filter(dataset=trained_dataset).latest("pk")
    response = login(model_admin).get(
        reverse("models_app:export", args=[trained_dataset.pk]),
        {"kind": "snapshot", "format": "parquet", "snapshot": snapshot.pk},
    )
    assert response.status_code == 200
    assert response["X-Loupe-Labels-Hash"] == snapshot.content_hash
    assert snapshot.content_hash[:12] in response["Content-Disposition"]

    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))

    frozen = SnapshotLabel.objects.filter(snapshot=snapshot)
    assert table.num_rows == frozen.count()
    assert sorted(table.column("external_id").to_pylist()) == sorted(frozen.values_list("item__external_id", flat=True))
    feature = trained_dataset.features.order_by("position").first()
    assert str(table.schema.field(feature.name).type) == "double"


def test_every_export_is_an_audit_event_naming_the_labels_it_reflects(trained_dataset, model_admin):
    _download(login(model_admin), trained_dataset, kind="items", format="jsonl")

    event = AuditEvent.objects.filter(action="export.created").latest("seq")
    assert event.actor == model_admin and event.dataset_id == trained_dataset.pk
    rows = GoldLabel.objects.filter(dataset=trained_dataset).order_by("item_id")
    expected = labels_hash(rows.values_list("item_id", "item__content_hash", "label__name"))
    assert event.after == {"kind": "items", "format": "jsonl", "labels_hash": expected}


def test_rows_are_read_a_page_at_a_time_with_none_lost_or_repeated(
    trained_dataset, model_admin, django_assert_max_num_queries
):
    client = login(model_admin)
    n_items = Item.objects.filter(dataset=trained_dataset).count()
    with mock.patch.object(exports, "PAGE", 7):
        rows = _csv_rows(_download(client, trained_dataset, kind="items", format="csv"))
    assert len(rows) == n_items == len({r["external_id"] for r in rows})


def test_a_snapshot_export_without_a_snapshot_says_so_and_records_nothing(trained_dataset, model_admin):
    client = login(model_admin)
    before = AuditEvent.objects.count()
    response = client.get(
        reverse("models_app:export", args=[trained_dataset.pk]), {"kind": "snapshot", "format": "csv"}
    )
    assert response.status_code == 400
    assert "Choose the snapshot to export." in response.content.decode()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("persona", ["reviewer", "outsider"])
def test_reviewers_and_outsiders_cannot_export(trained_dataset, persona, request):
    user = request.getfixturevalue(persona)
    response = login(user).get(
        reverse("models_app:export", args=[trained_dataset.pk]), {"kind": "items", "format": "csv"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="export.created").exists()
