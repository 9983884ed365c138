"""The auditor's downloads through the API (governance/audit_export_apis.py, issue 10): the same files as the
pages' links, streamed, formula-safe, ending with their hashes, and recorded before they are sent."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.db import transaction
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from annotations.models import Item
from governance.audit import audit_record
from governance.audit_exports import EXPORTED_ACTION
from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_checkpoint_create
from governance.models import AuditEvent
from tests.helpers import login, synthetic_rows

EXPORT = "/api/audit/exports/"


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []


@pytest.fixture
def trail(db) -> AuditEvent:
    """A few events, one whose reason a spreadsheet would run as a formula, and a checkpoint."""
    with transaction.atomic():
        audit_record(actor=None, action="test.event", object_type="thing", object_id=1, reason="plain")
        risky = audit_record(
            actor=None, action="test.risky", object_type="thing", object_id=2, reason='=HYPERLINK("http://x")'
        )
    audit_checkpoint_create()
    return risky


def _body(response: StreamingHttpResponse) -> bytes:
    assert response.streaming, "an export is streamed, not built in memory"
    return b"".join(response.streaming_content)


def _exports() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=EXPORTED_ACTION).order_by("seq"))


def test_the_events_as_jsonl_end_with_their_count_and_hash_and_the_export_is_recorded_first(trail, auditor):
    response = login(auditor).get(f"{EXPORT}?kind=events&file_format=jsonl&action=test.risky")

    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    assert "no-store" in response["Cache-Control"]
    body = _body(response)
    *lines, last = body.splitlines(keepends=True)
    summary = json.loads(last)["summary"]
    assert summary["rows"] == 1 and summary["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    row = json.loads(lines[0])
    assert row["seq"] == trail.seq and row["hash"] == trail.hash and row["prev_hash"] == trail.prev_hash
    (export,) = _exports()
    assert response["X-Loupe-Export-Event"] == str(export.seq) == str(summary["export_event_seq"])
    assert response["X-Loupe-Export-Bound"] == f"up_to_seq={export.after['up_to_seq']}"
    assert export.actor_id == auditor.pk and export.after["filters"] == {"action": "test.risky"}
    assert export.after["export"] == "events" and export.after["format"] == "jsonl"
    assert 'filename="loupe-audit-events-up-to-seq-' in response["Content-Disposition"]


def test_a_csv_export_neutralises_formulas(trail, auditor):
    response = login(auditor).get(f"{EXPORT}?kind=events&file_format=csv&action=test.risky")

    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    assert [row["reason"] for row in rows] == ['\'=HYPERLINK("http://x")']


def test_csv_is_the_default_format(trail, auditor):
    response = login(auditor).get(f"{EXPORT}?kind=signatures")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["X-Loupe-Export-Bound"].startswith("up_to_id=")


def test_the_checkpoints_file_is_the_pages_file(trail, auditor):
    client = login(auditor)

    api = _body(client.get(f"{EXPORT}?kind=checkpoints&file_format=csv"))
    page = _body(client.get(reverse("governance:audit_export", args=["checkpoints", "csv"])))

    assert api == page and api.count(b"\n") == 2  # the header and the one checkpoint
    assert [e.after["export"] for e in _exports()] == ["checkpoints", "checkpoints"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=everything", "kind"),
        ("file_format=jsonl", "kind"),
        ("kind=events&file_format=parquet", "file_format"),
        ("kind=events&date_from=yesterday", "date_from"),
        ("kind=events&date_from=2026-02-01&date_to=2026-01-01", "date_to"),
        ("kind=events&q=ab", "q"),
        ("kind=events&dataset=none", "dataset"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_parameter_and_nothing_is_recorded(trail, auditor, query, field):
    response = login(auditor).get(f"{EXPORT}?{query}")

    assert response.status_code == 400
    assert field in response.json()
    assert _exports() == []


@pytest.mark.parametrize("persona", ["reviewer", "model_admin", "outsider"])
def test_only_the_auditor_exports_the_trail(trail, request, persona):
    response = login(request.getfixturevalue(persona)).get(f"{EXPORT}?kind=events")

    assert response.status_code == 403
    assert _exports() == []


def test_without_credentials_an_export_is_a_401(trail):
    response = Client().get(f"{EXPORT}?kind=events")

    assert response.status_code == 401
    assert _exports() == []


# --- a lineage's export -----------------------------------------------------------------------------------


@pytest.fixture
def item(import_rows) -> Item:
    batch = import_rows(synthetic_rows(3, start=0))
    return Item.objects.filter(batch=batch).order_by("pk").first()


def _lineage_export(item: Item, fmt: str = "jsonl") -> str:
    return f"/api/lineage/item/{item.pk}/export/?file_format={fmt}"


@pytest.mark.parametrize("persona", ["model_admin", "auditor"])
def test_a_lineage_export_is_the_pages_file_and_is_recorded(item, request, persona):
    client = login(request.getfixturevalue(persona))

    api = client.get(_lineage_export(item))
    page = client.get(reverse("governance:lineage_export", args=["item", item.pk, "jsonl"]))

    assert api.status_code == 200 and api["Content-Type"].startswith("application/x-ndjson")
    api_lines, page_lines = _body(api).splitlines(), _body(page).splitlines()
    assert api_lines[:-1] == page_lines[:-1]  # the summary lines differ only by the event that recorded each
    summary = json.loads(api_lines[-1])["summary"]
    assert summary["sha256"] == hashlib.sha256(b"".join(line + b"\n" for line in api_lines[:-1])).hexdigest()
    first, second = _exports()
    assert api["X-Loupe-Export-Event"] == str(first.seq) == str(summary["export_event_seq"])
    assert first.after == {"export": "lineage", "format": "jsonl", "start": f"item:{item.pk}", "nodes": summary["rows"]}
    assert first.actor_id == request.getfixturevalue(persona).pk


def test_a_lineage_exports_as_csv_too_one_row_per_node(item, model_admin):
    client = login(model_admin)

    jsonl = _body(client.get(_lineage_export(item))).splitlines()
    response = client.get(_lineage_export(item, "csv"))

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    assert [row["node_sha256"] for row in rows] == [json.loads(line)["node_sha256"] for line in jsonl[:-1]]
    assert [e.after["format"] for e in _exports()] == ["jsonl", "csv"]


def test_a_lineage_export_in_another_format_is_a_400_naming_it(item, model_admin):
    response = login(model_admin).get(_lineage_export(item, "parquet"))

    assert response.status_code == 400 and "file_format" in response.json()
    assert _exports() == []


def test_a_reviewer_may_not_export_a_lineage(item, reviewer):
    assert login(reviewer).get(_lineage_export(item)).status_code == 403
    assert login(reviewer).get(_lineage_export(item, "parquet")).status_code == 403  # the role before the input
    assert _exports() == []


def test_a_missing_lineage_is_a_404_for_the_auditor(item, auditor):
    client = login(auditor)

    assert client.get(f"/api/lineage/item/{item.pk + 1000}/export/").status_code == 404
    assert client.get(f"/api/lineage/no-such-kind/{item.pk}/export/").status_code == 404
    assert _exports() == []
