"""A lineage as a file (issue 10, point 9): the lineage page's nodes as CSV or JSONL, with a hash per node,
recorded in the audit trail before it is handed out; and the signature export's check of each signature."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.urls import reverse

from governance.audit_chain import canonical_json
from governance.models import AuditEvent, PromotionRequest
from models_app.models import Evaluation, ModelVersion, SnapshotLabel
from tests.conftest import login


def _export(user, kind: str, pk: int, fmt: str):  # type: ignore[no-untyped-def]
    return login(user).get(reverse("governance:lineage_export", args=[kind, pk, fmt]))


def _body(response) -> str:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def champion_item(trained_dataset):  # type: ignore[no-untyped-def]
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    return SnapshotLabel.objects.filter(snapshot=champion.snapshot).order_by("item_id").first().item


def test_the_jsonl_holds_every_node_of_the_page_with_its_hash_and_a_summary(champion_item, auditor):
    page = login(auditor).get(reverse("governance:lineage", args=["item", champion_item.pk]) + "?format=json").json()
    response = _export(auditor, "item", champion_item.pk, "jsonl")

    assert response.status_code == 200 and response["Content-Disposition"].endswith('.jsonl"')
    body = _body(response).encode("utf-8")
    *lines, last = body.splitlines(keepends=True)
    rows = [json.loads(line) for line in lines]
    summary = json.loads(last)["summary"]
    expected = [page["node"]] + [n for d in ("up", "down") for s in page[d] for n in s["nodes"]]
    assert [(r["kind"], r["id"]) for r in rows] == [(n["kind"], n["id"]) for n in expected]
    for row, node in zip(rows, expected, strict=True):
        assert row["node_sha256"] == hashlib.sha256(canonical_json(node)).hexdigest()
    assert rows[0]["direction"] == "start" and {r["direction"] for r in rows[1:]} <= {"up", "down"}
    assert summary["rows"] == len(rows) and summary["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()


def test_the_export_is_recorded_before_it_is_sent_naming_its_start_and_size(champion_item, auditor):
    response = _export(auditor, "item", champion_item.pk, "csv")
    rows = list(csv.DictReader(io.StringIO(_body(response))))

    event = AuditEvent.objects.get(seq=int(response["X-Loupe-Export-Event"]))
    assert event.action == "audit.exported" and event.actor_id == auditor.pk
    assert event.after == {
        "export": "lineage",
        "format": "csv",
        "start": f"item:{champion_item.pk}",
        "nodes": len(rows),
    }
    assert event.dataset_id == champion_item.dataset_id
    assert json.loads(rows[0]["facts"])  # the facts travel as one JSON cell


def test_the_promotion_decision_and_its_signature_travel_in_the_export(trained_dataset, champion_item, auditor):
    promotion = PromotionRequest.objects.filter(model_version__dataset=trained_dataset, status="approved").first()
    rows = [json.loads(x) for x in _body(_export(auditor, "item", champion_item.pk, "jsonl")).splitlines()[:-1]]

    decision = next(r for r in rows if r["kind"] == "promotion" and r["id"] == promotion.pk)
    assert promotion.signature.record_hash in json.dumps(decision["facts"])


def test_a_formula_in_a_label_is_neutralised_in_the_csv(champion_item, auditor):
    body = _body(_export(auditor, "item", champion_item.pk, "csv"))
    for row in csv.DictReader(io.StringIO(body)):
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")) or value.startswith("'")


def test_only_those_who_may_read_the_lineage_may_export_it_and_a_refusal_records_nothing(
    champion_item, reviewer, outsider
):
    before = AuditEvent.objects.filter(action="audit.exported").count()
    assert _export(reviewer, "item", champion_item.pk, "csv").status_code == 403
    assert _export(outsider, "item", champion_item.pk, "jsonl").status_code == 403
    assert AuditEvent.objects.filter(action="audit.exported").count() == before


def test_an_unknown_format_or_kind_is_a_404(champion_item, auditor):
    assert _export(auditor, "item", champion_item.pk, "parquet").status_code == 404
    assert _export(auditor, "widget", champion_item.pk, "csv").status_code == 404


def test_the_signature_export_checks_each_signature_against_its_record_now(trained_dataset, auditor):
    promotion = PromotionRequest.objects.filter(model_version__dataset=trained_dataset, status="approved").first()
    client = login(auditor)

    def rows():  # type: ignore[no-untyped-def]
        response = client.get(reverse("governance:audit_export", args=["signatures", "jsonl"]))
        return {r["id"]: r for r in map(json.loads, _body(response).splitlines()[:-1])}

    assert rows()[promotion.signature_id]["check"] == "verified"
    Evaluation.objects.filter(training_run=promotion.model_version.training_run).update(holdout_size=1)
    changed = rows()[promotion.signature_id]
    assert changed["check"] == "record_changed" and changed["record_hash_now"] != changed["record_hash"]
