"""Benchmark: the override-rate page's two grouped statements (issue 10, point 6).

Usage:  DATABASE_URL=postgres://... .venv/bin/python bench/override_rates.py [--items 500000] [--repeat 10]
Writes bench/item_list.py's dataset (PostgreSQL only: generate_series) in a throw-away test
database, then times dataset_override_rates_for_user over 12 weeks and over the longest period allowed
(104 weeks), and prints the statements' plans (EXPLAIN ANALYZE): which indexes they use.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("LOUPE_PLAIN_STATIC", "true")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--extra", type=int, default=1_000_000, help="older reviews, spread over the two years before")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server.")
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.items, args.extra, args.repeat, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _older_reviews(dataset, n: int, connection) -> None:  # type: ignore[no-untyped-def]
    """`n` more reviews over 2023-2024 (so 12 weeks are a small part of the table, as in a dataset in use):
    open answers with a prediction shown (accept, correct every 7th, uncertain every 23rd), a blind
    share and skips, by the same 16 reviewers, on random items."""
    from annotations.models import Item, Review

    item, review = Item._meta.db_table, Review._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {item} WHERE dataset_id = %s", [dataset.pk])
        low, high = cursor.fetchone()
        cursor.execute("SELECT array_agg(reviewer_id) FROM (SELECT DISTINCT reviewer_id FROM " + review + ") r")
        reviewer_ids = cursor.fetchone()[0]
        cursor.execute(
            f"""
            INSERT INTO {review} (item_id, reviewer_id, decision, label_id, flagged, selection_strategy,
                                  selection_score, created_at, reason, reason_code, mode, guideline_version,
                                  shown_label_id, shown_confidence, shown_prediction_id)
            SELECT i.id, (%(reviewers)s::int[])[1 + g %% array_length(%(reviewers)s::int[], 1)],
                   CASE WHEN g %% 10 = 9 THEN 'skip' WHEN g %% 23 = 0 THEN 'uncertain'
                        WHEN g %% 7 = 0 THEN 'correct' ELSE 'accept' END,
                   CASE WHEN g %% 10 = 9 OR g %% 23 = 0 THEN NULL ELSE i.predicted_label_id END,
                   false, 'least_confidence', 0.5,
                   timestamptz '2023-01-01 00:00+00' + (g::float / %(n)s) * interval '730 days',
                   '', '', CASE WHEN g %% 5 = 0 THEN 'blind' ELSE 'open' END, '1',
                   CASE WHEN g %% 5 = 0 THEN NULL ELSE i.predicted_label_id END, i.predicted_confidence, i.prediction_id
            FROM generate_series(1, %(n)s) AS g
            JOIN {item} i ON i.id = %(low)s + (g::bigint * 7919) %% (%(high)s - %(low)s + 1)
            WHERE i.predicted_label_id IS NOT NULL
            """,
            {"reviewers": reviewer_ids, "n": n, "low": low, "high": high},
        )
        cursor.execute(f"VACUUM ANALYZE {review}")


def run(n_items: int, extra: int, repeat: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group
    from django.test.utils import CaptureQueriesContext

    from annotations.models import Review
    from annotations.override_rates import MAX_WEEKS, dataset_override_rates_for_user
    from bench.item_list import _fill_postgresql, _people

    started = time.monotonic()
    dataset, labels, reviewers, admin = _people()
    _fill_postgresql(n_items, dataset, labels, reviewers, admin, connection)
    _older_reviews(dataset, extra, connection)
    # A correction on every 7th answer, so the rates are not all zero (reviews refuse UPDATE: insert more).
    first, last = Review.objects.order_by("created_at").values_list("created_at", flat=True)[
        :: Review.objects.count() - 1
    ]
    print(f"{n_items:,} items, {Review.objects.count():,} reviews from {first:%Y-%m-%d} to {last:%Y-%m-%d}, "
          f"written in {time.monotonic() - started:.1f}s")  # fmt: skip
    admin.groups.add(Group.objects.get_or_create(name="model_admin")[0])
    end = last.date()
    for label, start in (("12 weeks", None), (f"{MAX_WEEKS} weeks", end - timedelta(weeks=MAX_WEEKS - 1))):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            rates = dataset_override_rates_for_user(user=admin, dataset_id=dataset.pk, start=start, end=end)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{label}: {len(rates.period.weeks)} weeks, {rates.total.answers:,} answers counted; "
              f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {repeat} calls")  # fmt: skip
        with CaptureQueriesContext(connection) as captured:
            dataset_override_rates_for_user(user=admin, dataset_id=dataset.pk, start=start, end=end)
        grouped = [q["sql"] for q in captured.captured_queries if "GROUP BY" in q["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + grouped[0])
            print("\n".join(f"    {row[0]}" for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
