"""The auditor's workspace (issue 10, point 9): free-text search, and exports of events, signatures
and checkpoints as CSV and JSONL, streamed, neutralised against formulas, and themselves audited."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance import audit_exports
from governance.audit import audit_record
from governance.audit_chain import chain_hash, event_fields, payload_digest
from governance.audit_search import SEARCH_TEXT, search_terms
from governance.checkpoint_signing import new_private_key_b64
from governance.checkpoints import audit_checkpoint_create
from governance.models import AuditEvent, Signature
from governance.selectors import chain_head
from tests.helpers import login

KINDS = ["events", "signatures", "checkpoints"]
FORMATS = ["csv", "jsonl"]


@pytest.fixture(autouse=True)
def signing_key(settings) -> None:
    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    settings.LOUPE_AUDIT_TRUSTED_KEYS = []


def _record(**fields) -> AuditEvent:  # type: ignore[no-untyped-def]
    fields.setdefault("actor", None)
    fields.setdefault("action", "test.event")
    with transaction.atomic():
        return audit_record(**fields)


@pytest.fixture
def trail(auditor) -> dict[str, AuditEvent]:
    """A few events worth searching for, a signature and a checkpoint."""
    events = {
        "review": _record(
            actor_username="alice",
            action="review.submitted",
            object_type="item",
            object_id="17",
            dataset_id=3,
            before={"label": "benign"},
            after={"label": "malignant", "note": "nodule at 4 o'clock"},
            reason="Shape irregular",
        ),
        "formula": _record(
            actor_username="@mallory",
            action="import.completed",
            object_type="import_batch",
            object_id="9",
            after={"file": '=HYPERLINK("http://evil","x")'},
            reason="=1+1",
        ),
        "other": _record(actor_username="bob", action="training.requested", reason="Weekly retrain"),
    }
    Signature.objects.create(
        signer=auditor,
        printed_name="-Dr. Minus",
        meaning=Signature.Meaning.APPROVAL,
        signed_at=timezone.now(),
        record_type="model_version",
        record_id="4",
        record_hash="ab" * 32,
    )
    audit_checkpoint_create()
    return events


def _get(client, kind: str, fmt: str, **params):  # type: ignore[no-untyped-def]
    return client.get(reverse("governance:audit_export", args=[kind, fmt]), params)


def _body(response) -> str:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content).decode("utf-8")


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return list(csv.DictReader(io.StringIO(_body(response))))


def _jsonl(response) -> tuple[list[dict], dict]:  # type: ignore[no-untyped-def]
    lines = _body(response).splitlines()
    return [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])["summary"]


def _last_export() -> AuditEvent:
    return AuditEvent.objects.filter(action="audit.exported").order_by("-seq").first()


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_auditor_downloads_each_export_as_a_stream(trail, auditor, kind, fmt):
    response = _get(login(auditor), kind, fmt)

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv" if fmt == "csv" else "application/x-ndjson")
    assert f"loupe-audit-{kind}-" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    assert _body(response)


@pytest.mark.parametrize("persona", ["reviewer", "outsider"])
@pytest.mark.parametrize("kind", KINDS)
def test_nobody_but_an_auditor_may_export_and_a_refusal_records_nothing(trail, request, persona, kind):
    client = login(request.getfixturevalue(persona))  # signing in is an event of its own
    seq = chain_head()[0]

    response = _get(client, kind, "csv")

    assert response.status_code == 403
    assert chain_head()[0] == seq


def test_an_anonymous_visitor_is_sent_to_sign_in(trail, client):
    response = _get(client, "events", "csv")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("kind", "fmt"), [("events", "parquet"), ("items", "csv"), ("events", "json")])
def test_an_unknown_export_is_a_404(trail, auditor, kind, fmt):
    assert _get(login(auditor), kind, fmt).status_code == 404


def test_the_auditor_page_links_every_export_with_its_filters(trail, auditor):
    page = login(auditor).get(reverse("governance:audit_list"), {"action": "review.submitted", "before": "99"})

    html = page.content.decode()
    assert f'{reverse("governance:audit_export", args=["events", "csv"])}?action=review.submitted"' in html
    for kind in KINDS:
        for fmt in FORMATS:
            assert reverse("governance:audit_export", args=[kind, fmt]) in html


# --- what is in the file ---------------------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(trail, auditor):
    client = login(auditor)
    events = {row["seq"]: row for row in _csv(_get(client, "events", "csv"))}
    signatures = _csv(_get(client, "signatures", "csv"))

    formula = events[str(trail["formula"].seq)]
    assert formula["reason"] == "'=1+1"
    assert formula["actor_username"] == "'@mallory"
    assert formula["after"].startswith('{"file": "=HYPERLINK')  # JSON text starts with "{": harmless
    assert signatures[0]["printed_name"] == "'-Dr. Minus"
    assert signatures[0]["record_hash"] == "ab" * 32


def test_jsonl_keeps_values_as_recorded_and_each_event_verifies_offline(trail, auditor):
    rows, _ = _jsonl(_get(login(auditor), "events", "jsonl"))

    assert rows, "no events exported"
    for row in rows:
        # What a third party does with the file alone: the header chains, the payload gives its digest.
        fields = event_fields(SimpleNamespace(**row))
        assert chain_hash(row["prev_hash"], fields) == row["hash"], row["seq"]
        if row["hash_scheme"] == 2:
            assert payload_digest(row["before"], row["after"], row["reason"]) == row["payload_sha256"], row["seq"]
    # In key order, so the exported links chain.
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert next(r for r in rows if r["seq"] == trail["formula"].seq)["reason"] == "=1+1"


def test_the_jsonl_summary_counts_the_rows_and_hashes_the_bytes_before_it(trail, auditor):
    response = _get(login(auditor), "events", "jsonl")
    body = _body(response).encode("utf-8")
    *lines, last = body.splitlines(keepends=True)

    summary = json.loads(last)["summary"]
    assert summary["rows"] == len(lines)
    assert summary["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    assert summary["export_event_seq"] == _last_export().seq == int(response["X-Loupe-Export-Event"])


def test_checkpoints_export_what_a_third_party_needs_to_check_them(trail, auditor):
    rows, summary = _jsonl(_get(login(auditor), "checkpoints", "jsonl"))

    assert summary["rows"] == 1
    assert set(rows[0]) == set(audit_exports.CHECKPOINT_COLUMNS)
    assert rows[0]["signature"] and rows[0]["key_fingerprint"] and len(rows[0]["root_hash"]) == 64


# --- filters, search and the bound -----------------------------------------------------------


def test_the_events_export_applies_the_pages_filters_and_search(trail, auditor):
    client = login(auditor)

    by_action = _csv(_get(client, "events", "csv", action="review.submitted"))
    by_search = _csv(_get(client, "events", "csv", q="retrain", actor="bob"))
    by_both = _csv(_get(client, "events", "csv", q="retrain", actor="alice"))

    assert [r["seq"] for r in by_action] == [str(trail["review"].seq)]
    assert [r["seq"] for r in by_search] == [str(trail["other"].seq)]
    assert by_both == []


def test_an_export_is_recorded_before_it_streams_with_its_filters_and_bound(trail, auditor):
    client = login(auditor)
    head = chain_head()[0]
    response = _get(client, "events", "jsonl", action="review.submitted", q="irregular")

    recorded = _last_export()
    assert recorded.seq == head + 1  # written before a byte was read
    assert recorded.actor == auditor
    assert recorded.after == {
        "export": "events",
        "format": "jsonl",
        "filters": {"action": "review.submitted", "search": "irregular"},
        "up_to_seq": head,
        "chain_head_seq": head,
    }
    assert response["X-Loupe-Export-Bound"] == f"up_to_seq={head}"
    _body(response)


def test_an_export_holds_exactly_the_events_up_to_its_bound(trail, auditor):
    client = login(auditor)
    head = chain_head()[0]
    response = _get(client, "events", "csv")
    _record(action="test.after_the_export_began", reason="too late")  # appended while the file streams

    seqs = [int(r["seq"]) for r in _csv(response)]

    assert seqs == list(range(1, head + 1))
    assert _last_export().after["up_to_seq"] == head


def test_a_bad_filter_refuses_the_export_naming_it_and_records_nothing(trail, auditor):
    client = login(auditor)
    seq = chain_head()[0]

    response = client.get(reverse("governance:audit_export", args=["events", "csv"]), {"q": "ab"})

    assert response.status_code == 400
    assert "“ab” is too short" in response.content.decode()
    assert chain_head()[0] == seq


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("irregular", "review"),  # the reason
        ("ALICE", "review"),  # the actor, whatever the case
        ("o'clock", "review"),  # inside the after JSON
        ("benign", "review"),  # inside the before JSON
        ('"nodule at 4"', "review"),  # a phrase in quotes is one term
        ("malignant nodule", "review"),  # every term, anywhere
        ("HYPERLINK", "formula"),
        ("import_batch", "formula"),  # the object type
        ("100%", None),  # LIKE's wildcards are text
        ("a_b", None),
    ],
)
def test_search_finds_events_by_reason_actor_and_json_content(trail, auditor, text, found):
    response = login(auditor).get(reverse("governance:audit_list"), {"q": text})

    assert response.status_code == 200
    seqs = [e.seq for e in response.context["page"].events]
    assert seqs == ([trail[found].seq] if found else [])


def test_search_combines_with_the_other_filters(trail, auditor):
    client = login(auditor)

    assert len(client.get(reverse("governance:audit_list"), {"q": "irregular", "dataset": 3}).context["page"].events)
    assert not client.get(reverse("governance:audit_list"), {"q": "irregular", "dataset": 4}).context["page"].events


def test_a_search_term_too_short_is_a_400_naming_it(trail, auditor):
    response = login(auditor).get(reverse("governance:audit_list"), {"q": "ok fine"})

    assert response.status_code == 400
    assert "“ok” is too short to search for" in response.content.decode()


def test_search_terms_split_on_spaces_and_keep_quoted_phrases():
    assert search_terms('alice "label: x" 4f2a9') == ["alice", "label: x", "4f2a9"]
    assert search_terms("   ") == []


def test_the_search_index_is_on_exactly_the_expression_searched():
    from importlib import import_module

    migration = import_module("governance.migrations.0020_audit_search_index")
    assert migration.SEARCH_TEXT == SEARCH_TEXT


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_answers_a_search_from_the_trigram_index(trail, auditor):
    from governance.selectors import AuditFilters, audit_events_for_user

    events = audit_events_for_user(user=auditor, filters=AuditFilters(search="irregular"))
    with connection.cursor() as cursor:
        # A tiny table: the planner would read it all, or walk seq. Make it show that it can use the index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = events.explain()

    assert "audit_search_trgm" in plan


# --- bounded memory and queries --------------------------------------------------------------


def test_the_export_reads_the_trail_in_chunks_of_bounded_size(auditor, monkeypatch):
    with transaction.atomic():
        for n in range(23):
            audit_record(actor=None, action="test.bulk", object_id=n)
    monkeypatch.setattr(audit_exports, "EXPORT_CHUNK", 5)
    response = _get(login(auditor), "events", "jsonl", action="test.bulk")

    with CaptureQueriesContext(connection) as queries:
        rows, summary = _jsonl(response)

    pages = [q["sql"] for q in queries.captured_queries if "governance_auditevent" in q["sql"]]
    assert summary["rows"] == len(rows) == 23
    assert len(pages) == 5  # 5 + 5 + 5 + 5 + 3, and no query after the short page
    assert all("LIMIT 5" in sql for sql in pages)


def test_the_export_costs_the_same_queries_before_streaming_however_long_the_trail(auditor):
    client = login(auditor)
    _body(_get(client, "events", "csv"))  # the session warmed
    with CaptureQueriesContext(connection) as short:
        _get(client, "events", "csv")  # not read: what the view costs before the first row
    with transaction.atomic():
        for n in range(40):
            audit_record(actor=None, action="test.bulk", object_id=n)

    with CaptureQueriesContext(connection) as long:
        response = _get(client, "events", "csv")

    assert len(long) == len(short)
    page = f"LIMIT {audit_exports.EXPORT_CHUNK}"
    assert not any(page in q["sql"] for q in long.captured_queries)  # no row read before streaming
    _body(response)


def test_a_search_costs_the_page_no_more_queries_than_no_search(trail, auditor):
    client = login(auditor)
    plain = client.get(reverse("governance:audit_list"))
    with CaptureQueriesContext(connection) as without:
        client.get(reverse("governance:audit_list"))
    with CaptureQueriesContext(connection) as with_search:
        searched = client.get(reverse("governance:audit_list"), {"q": "retrain"})

    assert plain.status_code == searched.status_code == 200
    assert len(with_search) <= len(without)  # one query fewer here: the found event names no object


def test_signatures_export_up_to_the_largest_id_at_the_start(trail, auditor):
    response = _get(login(auditor), "signatures", "jsonl")
    Signature.objects.create(
        signer=auditor,
        printed_name="Late",
        meaning=Signature.Meaning.REJECTION,
        signed_at=timezone.now() + timedelta(seconds=1),
        record_type="model_version",
        record_id="5",
        record_hash="cd" * 32,
    )

    rows, summary = _jsonl(response)

    assert [r["printed_name"] for r in rows] == ["-Dr. Minus"]
    assert summary["up_to_id"] == rows[0]["id"] == _last_export().after["up_to_id"]


def _signature(signer, name: str) -> Signature:
    return Signature.objects.create(
        signer=signer,
        printed_name=name,
        meaning=Signature.Meaning.REVIEWED,
        signed_at=timezone.now(),
        record_type="model_version",
        record_id="5",
        record_hash="ab" * 32,
    )


def test_a_signature_whose_act_commits_after_the_export_started_stays_out_of_it(trail, auditor, monkeypatch):
    # On PostgreSQL ids are drawn at insert, not at commit: an act still signing holds id N while id N + 1
    # commits. The export records the ids below its bound that were not there, and leaves them out even if
    # they commit while it streams, so its rows are exactly what its event says, now and on any rerun.
    from governance import audit_exports

    in_flight = _signature(auditor, "In flight")
    after_it = _signature(auditor, "Committed first")
    # As the export saw the table when it recorded itself: id N not yet committed.
    monkeypatch.setattr(audit_exports, "_id_gaps", lambda table, up_to: [[in_flight.pk, in_flight.pk]])
    response = _get(login(auditor), "signatures", "jsonl")
    rows, summary = _jsonl(response)

    names = [r["printed_name"] for r in rows]
    assert "Committed first" in names and "In flight" not in names
    assert summary["up_to_id"] == after_it.pk and summary["absent_ids"] == [[in_flight.pk, in_flight.pk]]
    assert _last_export().after["absent_ids"] == [[in_flight.pk, in_flight.pk]]


def test_the_gaps_below_the_bound_are_found_as_ranges(db):
    from django.db import connection

    from governance.audit_exports import _id_gaps

    table = "loupe_test_gaps"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} (id integer PRIMARY KEY)")
        cursor.executemany(f"INSERT INTO {table} (id) VALUES (%s)", [(i,) for i in (3, 4, 5, 9, 10, 12)])
    try:
        assert _id_gaps(table, 12) == [[1, 2], [6, 8], [11, 11]]
        assert _id_gaps(table, 5) == [[1, 2]]
        assert _id_gaps(table, 0) == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")


def test_the_audit_api_searches_like_the_page(trail, auditor):
    client = login(auditor)

    found = client.get("/api/audit-events/", {"q": "o'clock"})
    refused = client.get("/api/audit-events/", {"q": "x"})

    assert [e["seq"] for e in found.json()["results"]] == [trail["review"].seq]
    assert refused.status_code == 400
    assert "too short" in refused.json()["q"][0]
