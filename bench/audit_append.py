"""Benchmark: how many audit events per second `audit_record` appends, one event per transaction.

Usage:  .venv/bin/python bench/audit_append.py [--events 3000] [--threads 1]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. Prints events/s and how long the chain head is held
per event (from its lock to the commit). Issue 7's target: >= 1,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.events, args.threads, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(n_events: int, n_threads: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.db import connections, transaction

    from governance.audit import audit_record
    from governance.audit_chain import verify_chain
    from governance.models import AuditEvent

    held: list[float] = []

    def append(count: int, thread: int) -> None:
        try:
            for i in range(count):
                with transaction.atomic():
                    audit_record(
                        actor=None,
                        actor_username=f"bench{thread}",
                        action="bench.appended",
                        object_type="item",
                        object_id=i,
                        dataset_id=None,
                        before={"label": "benign"},
                        after={"label": "malignant", "reason": "bench"},
                        reason="bench",
                    )
                    locked_at = time.perf_counter()
                held.append(time.perf_counter() - locked_at)  # the commit, with the head still held
        finally:
            connections.close_all()

    per_thread = n_events // n_threads
    started = time.perf_counter()
    threads = [threading.Thread(target=append, args=(per_thread, t)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = per_thread * n_threads
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None and checked == total, (checked, broken)
    print(
        f"{connection.vendor}: {total:,} events from {n_threads} thread(s) in {elapsed:.2f}s = "
        f"{total / elapsed:,.0f} events/s; commit with the head held: median "
        f"{statistics.median(held) * 1000:.2f} ms; chain verified"
    )


if __name__ == "__main__":
    main()
