"""Benchmark: the auditor's event list (page and API) at a large trail.

Usage:  .venv/bin/python bench/audit_list.py [--events 1000000] [--repeat 20]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. The events are written straight into the table
(generate_series on PostgreSQL) with placeholder hashes: this measures reading
the list, not the chain (bench/audit_append.py measures appending). Prints
p50/p95 server time for the newest page, a page deep in the trail, filtered
pages (action, actor, dataset) and the API. Issue 7's target: <= 50 ms at 1M.
"""

from __future__ import annotations

import argparse
import os
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.events, args.repeat, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _fill(n: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from governance.models import AuditEvent

    table = AuditEvent._meta.db_table
    # Anything the set-up already recorded keeps its place; the filler goes after it.
    base = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # the append-only triggers
            cursor.execute(
                f"""
                INSERT INTO {table} (seq, created_at, actor_username, action, object_type, object_id, dataset_id,
                                     before, after, reason, request_id, prev_hash, hash)
                SELECT {base} + g, now() - (({n} - g) || ' seconds')::interval, 'user' || (g % 40),
                       (ARRAY{ACTIONS!r})[1 + g % {len(ACTIONS)}], 'item', g::text, 1 + g % 3,
                       '{{"label": "benign"}}'::jsonb, '{{"label": "malignant"}}'::jsonb, '', '',
                       'b' || lpad(to_hex({base} + g - 1), 63, '0'), 'b' || lpad(to_hex({base} + g), 63, '0')
                FROM generate_series(1, {n}) AS g
                """
            )
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
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
                after={"label": "malignant"},
                prev_hash=f"b{base + g - 1:063x}",
                hash=f"b{base + g:063x}",
            )
        )
        if len(batch) == 20_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


def run(n_events: int, repeat: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from annotations.models import Dataset

    datasets = [Dataset.objects.create(name=f"Bench {i}", slug=f"bench-{i}") for i in range(3)]
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
        "page: newest": ("/governance/audit/", {}),
        "page: deep (seq < n/2)": ("/governance/audit/", {"before": n_events // 2}),
        "page: by action": ("/governance/audit/", {"action": "auth.login"}),
        "page: by actor, deep": ("/governance/audit/", {"actor": "user7", "before": n_events // 2}),
        "page: by dataset": ("/governance/audit/", {"dataset": datasets[1].pk}),
        "api: newest 100": ("/api/audit-events/", {}),
        "api: by action, 500": ("/api/audit-events/", {"action": "review.skipped", "limit": 500}),
    }
    for name, (url, params) in cases.items():
        timings = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        timings.sort()
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        print(f"  {name:<24} p50 {statistics.median(timings):7.1f} ms   p95 {p95:7.1f} ms")


if __name__ == "__main__":
    main()
