"""Benchmark: server time of one review-loop step (submit an answer + get the next card).

Usage:  .venv/bin/python bench/review_loop.py [--items 20000] [--answers 300]
            [--strategies least_confidence,margin,entropy,disagreement,audit_slice,overlap2]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. Prints p50/p95/p99/max milliseconds and queries per step,
for each queue strategy in turn on the same items (issue 8): the open items are
rescored under it first (the worker's task, timed), then one reviewer answers.
"audit_slice" serves every card from the random slice; "overlap2" is least
confidence with two reviewers per item.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--strategies", default="least_confidence")
    parser.add_argument(
        "--api", action="store_true", help="answer through the REST API with a token (as bench/side_by_side.py does)"
    )
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions (cProfile)")
    parser.add_argument("--show-queries", action="store_true", help="print every query of the last step")
    parser.add_argument(
        "--backend-cpu-by-statement",
        action="store_true",
        help="attribute the PostgreSQL backend's CPU to each kind of statement (/proc, clock-tick resolution)",
    )
    args = parser.parse_args()
    if args.show_queries:
        os.environ["LOUPE_BENCH_SHOW_QUERIES"] = "1"
    if args.backend_cpu_by_statement:
        os.environ["LOUPE_BENCH_BACKEND_CPU"] = "1"

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args, CaptureQueriesContext, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, capture, connection) -> None:  # type: ignore[no-untyped-def]
    import random

    from django.contrib.auth.models import Group, User
    from django.test import Client

    from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, Item, LabelClass
    from workflow_site.celery import app

    app.conf.task_always_eager = True
    n_items, n_answers, strategies = args.items, args.answers, args.strategies.split(",")
    dataset = Dataset.objects.create(name="Bench", slug="bench")
    for i, name in enumerate(["a", "b", "c"]):
        Feature.objects.create(dataset=dataset, position=i, name=name, dtype="float", normal_min=0, normal_max=1)
    labels = [LabelClass.objects.create(dataset=dataset, position=i, name=n) for i, n in enumerate(["yes", "no"])]
    user = User.objects.create_user("bench-reviewer", password="x" * 12)
    user.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    DatasetMembership.objects.create(dataset=dataset, user=user)
    batch = ImportBatch.objects.create(
        dataset=dataset,
        uploaded_by=user,
        file_name="bench.csv",
        file_sha256="0" * 64,
        file_size=0,
        status="imported",
        rows_total=n_items,
        rows_imported=n_items,
    )
    rng = random.Random(1)
    started = time.monotonic()
    for start in range(0, n_items, 20000):
        items = []
        for i in range(start, min(n_items, start + 20000)):
            p_yes = rng.random()
            top = max(p_yes, 1 - p_yes)
            items.append(
                Item(
                    dataset=dataset,
                    batch=batch,
                    external_id=f"b{i}",
                    values={"a": rng.random(), "b": rng.random(), "c": rng.random()},
                    source_file="bench.csv",
                    source_row=i + 2,
                    content_hash="0" * 64,
                    queue_state="open",
                    prediction_id=i + 1,
                    predicted_label=labels[0] if p_yes >= 0.5 else labels[1],
                    predicted_confidence=top,
                    predicted_probabilities={"yes": round(p_yes, 6), "no": round(1 - p_yes, 6)},
                    predicted_by_version=1,
                    queue_priority=round(top, 6),
                    priority_strategy="least_confidence",
                    disagreement_score=rng.random(),
                )
            )
        Item.objects.bulk_create(items, batch_size=2000)  # under 65,535 parameters (server-side binding)
    from annotations.counters import counts_reset

    counts_reset(dataset_id=dataset.pk)  # the items were written around the counters' writers
    print(f"{connection.vendor}: {n_items} open items created in {time.monotonic() - started:.1f}s")
    if connection.vendor == "postgresql":
        # Steady state, as autovacuum would leave it (visibility map set, statistics fresh).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE annotations_item")

    client = Client()
    client.force_login(user)
    if args.api:
        from governance.credentials import api_token_create

        _, secret = api_token_create(user=user, name="bench", days=1)
        client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    from annotations import queue
    from annotations.workbench import queue_priorities_recompute

    for strategy in strategies:
        settings_ = {"queue_strategy": strategy, "overlap": 1, "audit_slice_percent": 10}
        draw = 0.99  # never the slice, never blind
        if strategy == "audit_slice":
            settings_["queue_strategy"], draw = "least_confidence", 0.0
        elif strategy == "overlap2":
            settings_.update(queue_strategy="least_confidence", overlap=2)
        Dataset.objects.filter(pk=dataset.pk).update(**settings_)
        t0 = time.perf_counter()
        rescored = queue_priorities_recompute(dataset_id=dataset.pk)
        rescore_s = time.perf_counter() - t0
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE annotations_item")
        queue.queue_random.random = lambda draw=draw: draw  # type: ignore[method-assign]
        print(f"\n{strategy}: {rescored} open items rescored in {rescore_s:.1f}s")
        step = _api_step if args.api else _page_step
        _answers(client, dataset, user, n_answers, capture, connection, step, args.profile)


def _page_step(client, dataset, item):  # type: ignore[no-untyped-def]
    """The review page: one htmx POST answers and returns the next card."""
    from django.urls import reverse

    url = reverse("annotations:review_submit", args=[dataset.pk, item.pk])
    data = {"label": "no", "shown_prediction": item.prediction_id, "action": "submit"}
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.status_code


def _api_step(client, dataset, item):  # type: ignore[no-untyped-def]
    """The API: POST the answer, then GET the next item (two requests, as the client workload does)."""
    response = client.post(
        f"/api/items/{item.pk}/reviews/",
        {"label": "no", "shown_prediction_id": item.prediction_id},
        content_type="application/json",
    )
    assert response.status_code == 201, (response.status_code, response.content[:300])
    response = client.get(f"/api/datasets/{dataset.pk}/next-item/")
    assert response.status_code == 200, response.status_code


def _backend_pid(connection) -> int | None:  # type: ignore[no-untyped-def]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds PostgreSQL backend `pid` has used (a local server only; else None). Clock-tick resolution."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _answers(client, dataset, user, n_answers: int, capture, connection, step, profile: int) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import cProfile
    import pstats

    from django.urls import reverse

    from annotations.models import Item

    if step is _page_step:
        client.get(reverse("annotations:review", args=[dataset.pk]))
    else:
        client.get(f"/api/datasets/{dataset.pk}/next-item/")
    timings, queries, cpu = [], [], []
    slowest: dict[str, float] = {}
    profiler = cProfile.Profile() if profile else None
    pid = _backend_pid(connection)
    by_statement: dict[str, float] = {}

    def attribute_backend_cpu(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        before = _backend_cpu_s(pid) or 0.0
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(str(sql).split())[:100]
            by_statement[key] = by_statement.get(key, 0.0) + (_backend_cpu_s(pid) or 0.0) - before

    attributing = bool(os.environ.get("LOUPE_BENCH_BACKEND_CPU")) and pid is not None
    backend_cpu_before = _backend_cpu_s(pid)
    with connection.execute_wrapper(attribute_backend_cpu) if attributing else contextlib.nullcontext():
        for _ in range(n_answers):
            # no ORDER BY: the held item by item_lease, not a walk of the dataset's id index
            item = next(iter(Item.objects.filter(leased_to=user, queue_state="open").order_by()[:1]), None)
            if item is None:
                break
            with capture(connection) as ctx:
                if profiler is not None:
                    profiler.enable()
                t0, c0 = time.perf_counter(), time.process_time()
                step(client, dataset, item)
                timings.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                if profiler is not None:
                    profiler.disable()
            queries.append(len(ctx.captured_queries))
            for query in ctx.captured_queries:
                key = query["sql"][:90]
                slowest[key] = slowest.get(key, 0.0) + float(query["time"]) * 1000
    backend_cpu_after = _backend_cpu_s(pid)
    timings.sort()

    def pct(q: float) -> float:
        return timings[max(0, int(len(timings) * q) - 1)]

    print(
        f"review step (submit + next card), {len(timings)} answers: p50 {statistics.median(timings):.1f} ms, "
        f"p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, max {timings[-1]:.1f} ms; "
        f"queries per step {min(queries)}–{max(queries)}"
    )
    sql_ms = sum(slowest.values()) / len(timings)
    print(
        f"per step: this process's CPU {statistics.mean(cpu):.1f} ms (Django and the test client), "
        f"SQL {sql_ms:.1f} ms (round trips, as the driver saw them)"
    )
    if backend_cpu_before is not None and backend_cpu_after is not None:
        backend_ms = (backend_cpu_after - backend_cpu_before) * 1000 / len(timings)
        print(f"PostgreSQL backend CPU per step: {backend_ms:.2f} ms (the bench's own reads between steps included)")
    if by_statement:
        print("PostgreSQL backend CPU by statement (ms per step; clock-tick samples, so a rough split):")
        for sql, seconds in sorted(by_statement.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {seconds * 1000 / len(timings):6.2f}  {sql}")
    if os.environ.get("LOUPE_BENCH_SHOW_QUERIES"):
        print("the last step's queries (ms):")
        for query in ctx.captured_queries:
            print(f"  {float(query['time']) * 1000:6.2f}  {' '.join(query['sql'].split())[:300]}")
    print("costliest queries (mean ms per step):")
    for sql, total in sorted(slowest.items(), key=lambda kv: -kv[1])[:4]:
        print(f"  {total / len(timings):6.2f}  {sql}")
    if profiler is not None:
        profiler.dump_stats("review_loop.prof")  # for snakeviz or pstats
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(profile)
        stats.sort_stats("tottime").print_stats(profile)  # where the CPU itself goes


if __name__ == "__main__":
    main()
