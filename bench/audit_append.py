"""Benchmark: how many audit events per second `audit_record` appends, one event per transaction.

Usage:  .venv/bin/python bench/audit_append.py [--events 3000] [--processes 1,2,4,8 | --threads 1,8] [--overhead]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database, made once and shared by the runs (one run per writer
count given, in turn; the chain grows across them and is verified after each).

Writers are threads of this process (`--threads`: they share one GIL, so beyond a
couple the figure is this client's limit, not the database's) or separate
processes (`--processes`, forked, each with its own connection). Issue 7's
target: well over 1,000 events/s.

Besides events/s it prints how long the chain head is held per event: from the
start of the statement that takes it to the end of the commit. A writer that
finds the head taken waits inside that statement, so the time it is *granted*
is estimated as the later of its statement's start and the previous event's
commit end (events in seq order; every writer reads the same monotonic clock);
"held" counts from then, "queued" is the wait before it. (SQLite takes its one
write lock at BEGIN, so there writers queue before the head statement, unseen.)

`--overhead` measures what issue 10 asks about instead: what one audit event adds to a
transaction that already makes a change (target under 1 ms on PostgreSQL). One writer
runs transactions that update one row, alternately without and with an
`audit_record` call, in interleaved blocks so drift on a shared machine falls on both;
the overhead is the difference of the medians (and of the 95th percentiles).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")

HEAD_TABLE = "governance_auditchainhead"

# (seq, start of the statement that took the head, end of the commit), on the shared monotonic clock.
Mark = tuple[int, float, float]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000, help="events per run, split across the writers")
    parser.add_argument("--overhead", action="store_true", help="time one audit event added to a transaction")
    writers = parser.add_mutually_exclusive_group()
    writers.add_argument("--threads", default="", help="writer threads, e.g. 1 or 1,8 (one run each)")
    writers.add_argument("--processes", default="", help="writer processes, e.g. 1,2,4,8 (one run each)")
    args = parser.parse_args()
    kind = "process" if args.processes else "thread"
    counts = [int(n) for n in (args.processes or args.threads or "1").split(",")]

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        if args.overhead:
            overhead(args.events, connection)
            return
        for n in counts:
            run(args.events, n, kind, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _append(count: int, writer: int) -> tuple[float, list[Mark]]:
    """Append `count` events, one per transaction; returns when it started and each event's marks."""
    from django.db import connection, transaction

    from governance.audit import audit_record

    locked_at: list[float] = []

    def note_head_statement(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not locked_at and HEAD_TABLE in sql:
            locked_at.append(time.perf_counter())
        return execute(sql, params, many, context)

    marks: list[Mark] = []
    connection.ensure_connection()
    go = time.perf_counter()
    with connection.execute_wrapper(note_head_statement):
        for i in range(count):
            locked_at.clear()
            with transaction.atomic():
                event = audit_record(
                    actor=None,
                    actor_username=f"bench{writer}",
                    action="bench.appended",
                    object_type="item",
                    object_id=i,
                    dataset_id=None,
                    before={"label": "benign"},
                    after={"label": "malignant", "reason": "bench"},
                    reason="bench",
                )
            marks.append((event.seq, locked_at[0], time.perf_counter()))
    return go, marks


def _in_process(count: int, writer: int, barrier: Any, results: Any) -> None:
    from django.db import connections

    try:
        barrier.wait(timeout=120)
        results.put(_append(count, writer))
    except BaseException as exc:  # report it to the parent, which would otherwise wait forever
        results.put(exc)
    finally:
        connections.close_all()


def _in_thread(count: int, writer: int, results: list[Any]) -> None:
    from django.db import connections

    try:
        results.append(_append(count, writer))
    except BaseException as exc:
        results.append(exc)
    finally:
        connections.close_all()


def run(n_events: int, n_writers: int, kind: str, connection) -> None:  # type: ignore[no-untyped-def]
    from django.db import connections

    from governance.audit_chain import verify_chain
    from governance.models import AuditEvent

    per_writer = n_events // n_writers
    results: list[Any] = []
    if kind == "process":
        # Forked children inherit the test database's name; none may inherit an open connection.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        barrier, queue = context.Barrier(n_writers), context.Queue()
        children = [context.Process(target=_in_process, args=(per_writer, w, barrier, queue)) for w in range(n_writers)]
        for child in children:
            child.start()
        results = [queue.get(timeout=600) for _ in children]
        for child in children:
            child.join()
    else:
        threads = [threading.Thread(target=_in_thread, args=(per_writer, w, results)) for w in range(n_writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]

    started = min(go for go, _ in results)
    marks = sorted(mark for _, writer_marks in results for mark in writer_marks)
    elapsed = max(end for _, _, end in marks) - started
    held, queued = [], []
    previous_end = started
    for _, statement_start, commit_end in marks:
        granted = max(statement_start, previous_end)
        held.append(commit_end - granted)
        queued.append(granted - statement_start)
        previous_end = commit_end
    total = len(marks)
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None and checked == AuditEvent.objects.count(), (checked, broken)
    writers = f"{n_writers} {kind}" + ("" if n_writers == 1 else "es" if kind == "process" else "s")
    print(
        f"{connection.vendor}: {total:,} events from {writers} in {elapsed:.2f}s = "
        f"{total / elapsed:,.0f} events/s; head held {_ms(held)}; queued for it {_ms(queued)}; "
        f"chain verified ({checked:,} events)",
        flush=True,
    )


def overhead(n_events: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    from governance.audit import audit_record

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_change (id integer PRIMARY KEY, n bigint NOT NULL)")
        cursor.execute("INSERT INTO bench_change VALUES (1, 0)")
    timings: dict[bool, list[float]] = {False: [], True: []}
    block = 100
    for b in range(max(1, n_events // block) * 2):
        audited = b % 2 == 1
        for i in range(block):
            started = time.perf_counter()
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE bench_change SET n = n + 1 WHERE id = 1")
                if audited:
                    audit_record(
                        actor=None,
                        actor_username="bench",
                        action="bench.changed",
                        object_type="bench_change",
                        object_id=1,
                        before={"n": i},
                        after={"n": i + 1, "label": "malignant"},
                        reason="bench",
                    )
            timings[audited].append(time.perf_counter() - started)
    plain, audited_times = timings[False], timings[True]
    p95 = lambda xs: statistics.quantiles(xs, n=20)[-1]  # noqa: E731
    median_extra = (statistics.median(audited_times) - statistics.median(plain)) * 1000
    p95_extra = (p95(audited_times) - p95(plain)) * 1000
    print(
        f"{connection.vendor}: {len(audited_times):,} audited and {len(plain):,} plain transactions (one UPDATE each);"
        f" plain {_ms(plain)}; with one audit event {_ms(audited_times)};"
        f" the event adds {median_extra:.2f} ms at the median, {p95_extra:.2f} ms at p95",
        flush=True,
    )


def _ms(seconds: list[float]) -> str:
    p95 = statistics.quantiles(seconds, n=20)[-1] if len(seconds) > 1 else seconds[0]
    return f"median {statistics.median(seconds) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


if __name__ == "__main__":
    main()
