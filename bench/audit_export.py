"""Benchmark: the auditor's workspace at a large trail: free-text search on the audit page, and
streamed exports of every event (CSV and JSONL).

Usage:  .venv/bin/python bench/audit_export.py [--events 1000000] [--repeat 10]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. The events are written straight into the table as
bench/audit_list.py writes them (generate_series on PostgreSQL, bulk inserts on
SQLite) with placeholder hashes, plus a reason on every 10,000th event (a rare
term) and a note on every 100th (a 1% term). On PostgreSQL the search index is
dropped for the fill and built after it, and its build time printed.

Prints p50/p95 server time for searches (rare, 1%, every event, combined with a
filter, a deep page), then for each export format: rows, seconds, rows/s, bytes,
the number of queries, and the process's peak RSS before and after the export
(ru_maxrss: if the export held its rows, the peak would grow with them).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("LOUPE_PLAIN_STATIC", "true")

ACTIONS = ["review.submitted", "review.skipped", "predictions.created", "auth.login", "import.completed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="print each search's plan (EXPLAIN ANALYZE), no exports")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.events, args.repeat, connection, explain=args.explain)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _fill(n: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from governance.models import AuditEvent

    table = AuditEvent._meta.db_table
    base = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if connection.vendor == "postgresql":
        from importlib import import_module

        migration = import_module("governance.migrations.0020_audit_search_index")
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS audit_search_trgm")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # the append-only triggers
            cursor.execute(
                f"""
                INSERT INTO {table} (seq, created_at, actor_username, action, object_type, object_id, dataset_id,
                                     before, after, reason, request_id, prev_hash, hash)
                SELECT {base} + g, now() - (({n} - g) || ' seconds')::interval, 'user' || (g % 40),
                       (ARRAY{ACTIONS!r})[1 + g % {len(ACTIONS)}], 'item', g::text, 1 + g % 3,
                       '{{"label": "benign"}}'::jsonb,
                       CASE WHEN g % 100 = 0 THEN '{{"label": "malignant", "note": "calcified margin"}}'::jsonb
                            ELSE '{{"label": "malignant"}}'::jsonb END,
                       CASE WHEN g % 10000 = 0 THEN 'Escalated to the tumour board' ELSE '' END, '',
                       'b' || lpad(to_hex({base} + g - 1), 63, '0'), 'b' || lpad(to_hex({base} + g), 63, '0')
                FROM generate_series(1, {n}) AS g
                """
            )
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            started = time.monotonic()
            cursor.execute(migration.CREATE)
            print(f"  search index built in {time.monotonic() - started:.1f}s")
            cursor.execute(f"VACUUM ANALYZE {table}")
        return
    now = timezone.now()
    batch = []
    for g in range(1, n + 1):
        batch.append(
            AuditEvent(
                seq=base + g,
                created_at=now,
                actor_username=f"user{g % 40}",
                action=ACTIONS[g % len(ACTIONS)],
                object_type="item",
                object_id=str(g),
                dataset_id=1 + g % 3,
                before={"label": "benign"},
                after={"label": "malignant", "note": "calcified margin"} if g % 100 == 0 else {"label": "malignant"},
                reason="Escalated to the tumour board" if g % 10000 == 0 else "",
                prev_hash=f"b{base + g - 1:063x}",
                hash=f"b{base + g:063x}",
            )
        )
        if len(batch) == 20_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


def _explain(auditor, params: dict) -> None:  # type: ignore[no-untyped-def]
    from governance.forms import AuditFilterForm
    from governance.selectors import audit_events_for_user

    form = AuditFilterForm(params)
    form.is_valid()
    events = audit_events_for_user(user=auditor, filters=form.to_filters())
    if "before" in params:
        events = events.filter(seq__lt=params["before"])
    print("    " + events[:51].explain(analyze=True, buffers=True).replace("\n", "\n    "))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run(n_events: int, repeat: int, connection, *, explain: bool = False) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from governance.models import AuditChainHead, AuditEvent

    started = time.monotonic()
    _fill(n_events, connection)
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    AuditChainHead.objects.update_or_create(singleton=True, defaults={"seq": last[0], "hash": last[1]})
    print(f"{connection.vendor}: {n_events:,} audit events written in {time.monotonic() - started:.1f}s")
    auditor = User.objects.create_user("bench-auditor", password="x" * 12)
    auditor.groups.add(Group.objects.get_or_create(name="auditor")[0])
    client = Client()
    client.force_login(auditor)
    cases = {
        "search: rare (1 in 10k)": {"q": "tumour board"},
        "search: 1% (calcified)": {"q": "calcified"},
        "search: every event": {"q": "malignant"},
        "search: none match": {"q": "no-such-text"},
        "search: 1% + actor": {"q": "calcified", "actor": "user0"},
        "search: 1%, deep page": {"q": "calcified", "before": n_events // 2},
        "no search (baseline)": {},
    }
    for name, params in cases.items():
        timings = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get("/governance/audit/", params)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        timings.sort()
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        print(f"  {name:<26} p50 {statistics.median(timings):8.1f} ms   p95 {p95:8.1f} ms")
        if explain:
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as queries:
                client.get("/governance/audit/", params)
            print("    queries (ms): " + ", ".join(q["time"] for q in queries.captured_queries))
            _explain(auditor, params)
    if explain:
        return

    for fmt in ("csv", "jsonl"):
        rss_before = _peak_rss_mb()
        t0 = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/governance/audit/export/events.{fmt}")
            size = rows = 0
            for chunk in response.streaming_content:
                size += len(chunk)
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - t0
        rows -= 1  # the CSV header, or the JSONL summary line
        print(
            f"  export events.{fmt:<5} {rows:,} rows in {seconds:.1f}s = {rows / seconds:,.0f} rows/s, "
            f"{size / 1e6:,.0f} MB, {len(queries)} queries, peak RSS {rss_before:,.0f} -> {_peak_rss_mb():,.0f} MB"
        )
    filtered = client.get("/governance/audit/export/events.jsonl", {"q": "calcified"})
    t0 = time.perf_counter()
    lines = sum(chunk.count(b"\n") for chunk in filtered.streaming_content) - 1
    print(f"  export events.jsonl q=calcified: {lines:,} rows in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
