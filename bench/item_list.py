"""Benchmark: the filtered item list (issue 8 point 7; issue 7's target: 100 rows, p95 <= 20 ms at 1M items).

Usage:  .venv/bin/python bench/item_list.py [--items 1000000] [--repeat 200]
Uses DATABASE_URL when set (PostgreSQL: the rows are written with generate_series,
fast), SQLite otherwise (bulk_create, slow: use fewer items); always in a fresh
throw-away test database. The dataset: 80% open, 15% done, 4% holdout, 1% awaiting
adjudication; 2.5% without a prediction, 2% without an observation time; gold labels on
done and holdout items; 1–2 reviews per done item from 16 reviewers (10% audit slice,
1% flagged), two disagreeing ones per item awaiting adjudication, and an adjudication
review on 1% of the done items.

For each filter and sort, prints p50/p95 milliseconds of items_search_for_user (the
selector both the page and the API call: role check, label classes, the page's one or
two queries) over --repeat calls, and the indexes in the main query's plan
(EXPLAIN ANALYZE, PostgreSQL). Then the page itself through the test client.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("LOUPE_PLAIN_STATIC", "true")

N_REVIEWERS = 16


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--keep", action="store_true", help="keep the test database and its rows for the next run (same --items)"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if args.keep:  # one name for every run (the settings add the process id to a test database's name)
        connection.settings_dict["TEST"]["NAME"] = f"bench_items_{connection.settings_dict['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    try:
        run(args.items, args.repeat, connection)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def _people():  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User

    from annotations.models import Dataset, DatasetMembership, LabelClass

    dataset = Dataset.objects.create(name="Bench", slug="bench")
    labels = [LabelClass.objects.create(dataset=dataset, position=i, name=n) for i, n in enumerate("abc")]

    def person(name: str, role: str):  # type: ignore[no-untyped-def]
        user = User.objects.create_user(name, password="x" * 12)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        DatasetMembership.objects.create(dataset=dataset, user=user)
        return user

    reviewers = [person(f"bench-reviewer{i}", "reviewer") for i in range(N_REVIEWERS)]
    admin = person("bench-admin", "model_admin")
    return dataset, labels, reviewers, admin


# An item's values as an import of the breast-cancer demo gives them: 30 numeric features (JSON the API
# parses and writes again for every row, so the list's cost depends on it), built from g without random().
_VALUES_SQL = (
    "('{' || "
    + " || ',' || ".join(
        f"'\"f{k}\": ' || round(((g::bigint * {7919 + 104 * k}) % 100003) / 1000.0, 3)" for k in range(30)
    )
    + " || '}')::jsonb"
)


def _fill_postgresql(n: int, dataset, labels, reviewers, admin, connection) -> None:  # type: ignore[no-untyped-def]
    from annotations.models import GoldLabel, ImportBatch, Item, Review

    batch = ImportBatch.objects.create(
        dataset=dataset, uploaded_by=admin, file_name="bench.csv", file_sha256="0" * 64, file_size=0, status="imported"
    )
    label_ids = "ARRAY[" + ",".join(str(label.pk) for label in labels) + "]"
    reviewer_ids = "ARRAY[" + ",".join(str(r.pk) for r in reviewers) + "]"
    item, gold, review = Item._meta.db_table, GoldLabel._meta.db_table, Review._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""
            INSERT INTO {item} (dataset_id, batch_id, external_id, values, source_file, source_row, observed_at,
                                content_hash, queue_state, queue_priority, prediction_id, predicted_label_id,
                                predicted_confidence, predicted_by_version, predicted_probabilities)
            SELECT {dataset.pk}, {batch.pk}, 'b' || g, {_VALUES_SQL}, 'bench.csv', g + 1,
                   CASE WHEN g % 50 = 7 THEN NULL
                        ELSE timestamptz '2024-01-01 00:00+00' + g * interval '31 seconds' END,
                   repeat('0', 64),
                   CASE WHEN g % 100 = 0 THEN 'adjudicate' WHEN g % 100 <= 15 THEN 'done'
                        WHEN g % 100 <= 19 THEN 'holdout' ELSE 'open' END,
                   c.conf, CASE WHEN c.conf IS NULL THEN NULL ELSE g END,
                   CASE WHEN c.conf IS NULL THEN NULL ELSE ({label_ids})[1 + (g::bigint * 7919) % 3] END,
                   c.conf, CASE WHEN c.conf IS NULL THEN NULL ELSE 1 END,
                   CASE WHEN c.conf IS NULL THEN NULL
                        ELSE jsonb_build_object('a', c.conf, 'b', (1 - c.conf) / 2, 'c', (1 - c.conf) / 2) END
            FROM generate_series(1, {n}) AS g
            CROSS JOIN LATERAL (SELECT CASE WHEN g % 40 = 3 THEN NULL ELSE 0.34 + 0.66 * random() END AS conf) c
            """
        )
        cursor.execute(
            f"""
            INSERT INTO {gold} (item_id, dataset_id, label_id, origin, updated_at)
            SELECT id, dataset_id, ({label_ids})[1 + (id * 31) % 3],
                   CASE WHEN queue_state = 'holdout' THEN 'import' ELSE 'review' END, now()
            FROM {item} WHERE dataset_id = {dataset.pk} AND queue_state IN ('done', 'holdout')
            """
        )
        # First answers: every done item and every item awaiting adjudication; second answers on a third
        # of the done items and all the adjudication ones (disagreeing); adjudication decisions on 1% of done.
        common = "reason, reason_code, mode, guideline_version, shown_label_id, shown_confidence, shown_prediction_id"
        cursor.execute(
            f"""
            INSERT INTO {review} (item_id, reviewer_id, decision, label_id, flagged, selection_strategy,
                                  selection_score, created_at, {common})
            SELECT i.id, ({reviewer_ids})[1 + (i.id + k) % {N_REVIEWERS}],
                   CASE WHEN k = 2 AND i.queue_state = 'done' AND i.id % 100 = 1 THEN 'adjudicate'
                        WHEN i.predicted_label_id IS NULL THEN 'label' ELSE 'accept' END,
                   COALESCE(i.predicted_label_id, ({label_ids})[1]),
                   (i.id + k) % 97 = 0,
                   CASE WHEN k = 2 AND i.id % 100 = 1 THEN 'adjudication'
                        WHEN (i.id + k) % 10 = 0 THEN 'audit_slice' ELSE 'least_confidence' END,
                   i.queue_priority,
                   timestamptz '2025-01-01 00:00+00' + (i.id * 3 + k) * interval '7 seconds',
                   '', '', 'open', '1', i.predicted_label_id, i.predicted_confidence, i.prediction_id
            FROM {item} i CROSS JOIN generate_series(0, 2) AS k
            WHERE i.dataset_id = {dataset.pk} AND (
                (k = 0 AND i.queue_state IN ('done', 'adjudicate'))
                OR (k = 1 AND (i.queue_state = 'adjudicate' OR (i.queue_state = 'done' AND i.id % 3 = 0)))
                OR (k = 2 AND i.queue_state = 'done' AND i.id % 100 = 1))
            """
        )
        for table in (item, gold, review):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _fill_sqlite(n: int, dataset, labels, reviewers, admin) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt
    import random

    from annotations.models import GoldLabel, ImportBatch, Item, Review

    rng = random.Random(42)
    batch = ImportBatch.objects.create(
        dataset=dataset, uploaded_by=admin, file_name="bench.csv", file_sha256="0" * 64, file_size=0, status="imported"
    )
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    states = ["adjudicate"] + ["done"] * 15 + ["holdout"] * 4 + ["open"] * 80
    items = []
    for g in range(1, n + 1):
        conf = None if g % 40 == 3 else 0.34 + 0.66 * rng.random()
        items.append(
            Item(
                dataset=dataset,
                batch=batch,
                external_id=f"b{g}",
                values={"x": 1.5},
                source_file="bench.csv",
                source_row=g + 1,
                observed_at=None if g % 50 == 7 else start + dt.timedelta(seconds=31 * g),
                content_hash="0" * 64,
                queue_state=states[g % 100],
                predicted_label=None if conf is None else labels[(g * 7919) % 3],
                predicted_confidence=conf,
            )
        )
    Item.objects.bulk_create(items, batch_size=5000)
    done = list(Item.objects.filter(dataset=dataset, queue_state__in=["done", "holdout", "adjudicate"]))
    GoldLabel.objects.bulk_create(
        GoldLabel(item=i, dataset=dataset, label=labels[i.pk % 3], origin="review", updated_at=start)
        for i in done
        if i.queue_state != "adjudicate"
    )
    Review.objects.bulk_create(
        Review(
            item=i,
            reviewer=reviewers[(i.pk + k) % N_REVIEWERS],
            decision="accept",
            label=labels[0],
            flagged=(i.pk + k) % 97 == 0,
            selection_strategy="audit_slice" if (i.pk + k) % 10 == 0 else "least_confidence",
            guideline_version="1",
        )
        for i in done
        if i.queue_state != "holdout"
        for k in range(2 if i.queue_state == "adjudicate" or i.pk % 3 == 0 else 1)
    )


def _cases(labels, reviewers, middle_id: int) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    import datetime as dt

    from annotations.item_search import ItemFilters

    a, b = labels[0].name, labels[1].name
    week = (dt.date(2024, 2, 1), dt.date(2024, 2, 7))
    return {
        "no filter, by id": {},
        "no filter, newest first": {"sort": "-id"},
        "no filter, deep page": {"after": str(middle_id)},
        "state = open": {"filters": ItemFilters(state="open")},
        "state = done": {"filters": ItemFilters(state="done")},
        "state = adjudicate": {"filters": ItemFilters(state="adjudicate")},
        "predicted label": {"filters": ItemFilters(predicted_label=a)},
        "confidence 0.40–0.45": {"filters": ItemFilters(min_confidence=0.40, max_confidence=0.45)},
        "gold label": {"filters": ItemFilters(gold_label=b)},
        "strategy = audit_slice": {"filters": ItemFilters(strategy="audit_slice")},
        "strategy = least_confidence": {"filters": ItemFilters(strategy="least_confidence")},
        "strategy = label_issue (none)": {"filters": ItemFilters(strategy="label_issue")},
        "reviewer": {"filters": ItemFilters(reviewer_id=reviewers[3].pk)},
        "disagreement": {"filters": ItemFilters(disagreement=True)},
        "flagged": {"filters": ItemFilters(flagged=True)},
        "observed in one week": {"filters": ItemFilters(observed_from=week[0], observed_to=week[1])},
        # Mid-year: observed time rises with id here, so a walk of the id index meets the week half-way.
        "observed in a week mid-year": {
            "filters": ItemFilters(observed_from=dt.date(2024, 7, 1), observed_to=dt.date(2024, 7, 7))
        },
        "observed in the last two months": {
            "filters": ItemFilters(observed_from=dt.date(2024, 11, 1), observed_to=dt.date(2024, 12, 31))
        },
        "reviewed on one day": {
            "filters": ItemFilters(reviewed_from=dt.date(2025, 1, 20), reviewed_to=dt.date(2025, 1, 20))
        },
        "sort confidence": {"sort": "confidence"},
        "sort -confidence": {"sort": "-confidence"},
        "sort observed": {"sort": "observed"},
        "sort -observed": {"sort": "-observed"},
        "open, least confident first": {"filters": ItemFilters(state="open"), "sort": "confidence"},
        "done + predicted a, by confidence": {
            "filters": ItemFilters(state="done", predicted_label=a),
            "sort": "confidence",
        },
        "gold b + flagged": {"filters": ItemFilters(gold_label=b, flagged=True)},
        "flagged, by confidence": {"filters": ItemFilters(flagged=True), "sort": "confidence"},
        "audit slice, by confidence": {"filters": ItemFilters(strategy="audit_slice"), "sort": "confidence"},
    }


def run(n_items: int, repeat: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from annotations.item_search import ItemFilters, items_search_for_user
    from annotations.models import Dataset, Item, LabelClass, Review

    started = time.monotonic()
    dataset = Dataset.objects.filter(slug="bench").first()
    if dataset is not None and Item.objects.filter(dataset=dataset).count() == n_items:  # --keep, filled before
        labels = list(LabelClass.objects.filter(dataset=dataset).order_by("position"))
        reviewers = list(User.objects.filter(username__startswith="bench-reviewer").order_by("pk"))
        admin = User.objects.get(username="bench-admin")
    else:
        if dataset is not None:
            raise SystemExit("The kept database holds another number of items: run once without --keep.")
        dataset, labels, reviewers, admin = _people()
        if connection.vendor == "postgresql":
            _fill_postgresql(n_items, dataset, labels, reviewers, admin, connection)
        else:
            _fill_sqlite(n_items, dataset, labels, reviewers, admin)
    n_reviews = Review.objects.count()
    print(f"{connection.vendor}: {n_items:,} items, {n_reviews:,} reviews written in {time.monotonic() - started:.1f}s")
    ids = Item.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)
    middle_id = ids[n_items // 2]

    def search(user, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("filters", ItemFilters())
        return items_search_for_user(user=user, dataset_id=dataset.pk, limit=100, **kwargs)

    cases = {name: (admin, kw) for name, kw in _cases(labels, reviewers, middle_id).items()}
    cases["a reviewer's own answers"] = (reviewers[5], {})
    cases["a reviewer's own, audit slice"] = (reviewers[5], {"filters": ItemFilters(strategy="audit_slice")})
    print(f"{'case':<36} {'rows':>4} {'p50 ms':>7} {'p95 ms':>7}  indexes in the plan (main query)")
    for name, (user, kwargs) in cases.items():
        page = search(user, **kwargs)  # warm
        with CaptureQueriesContext(connection) as captured:
            search(user, **kwargs)
        timings = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            search(user, **kwargs)
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        plan = _plan(captured.captured_queries, connection)
        print(f"{name:<36} {len(page.items):>4} {statistics.median(timings):7.2f} {p95:7.2f}  {plan}")

    client = Client()
    client.force_login(admin)
    url = reverse("annotations:item_list", args=[dataset.pk])
    api = reverse("api_items", args=[dataset.pk])
    for name, (where, params) in {
        "page: no filter": (url, {}),
        "page: state=done, by confidence": (url, {"state": "done", "sort": "confidence"}),
        "api: no filter": (api, {}),
        "api: state=done, by confidence": (api, {"queue_state": "done", "sort": "confidence"}),
    }.items():
        timings = []
        for _ in range(max(20, repeat // 4)):
            t0 = time.perf_counter()
            response = client.get(where, params)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
        timings.sort()
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        what = "page render" if where == url else "100 rows of JSON with their values"
        print(f"{name:<36} {'':>4} {statistics.median(timings):7.2f} {p95:7.2f}  (whole request: {what} included)")


def _plan(queries: list[dict], connection) -> str:  # type: ignore[no-untyped-def]
    """The indexes the item queries use, and their execution time, from EXPLAIN ANALYZE."""
    if connection.vendor != "postgresql":
        return "(EXPLAIN on PostgreSQL only)"
    found = []
    for query in queries:
        sql = query["sql"]
        if 'FROM "annotations_item"' not in sql or "ORDER BY" not in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN ANALYZE " + sql)
            lines = [row[0] for row in cursor.fetchall()]
        indexes = []
        for line in lines:
            for index in re.findall(r"\busing (\w+)", line):
                if index not in indexes:
                    indexes.append(index)
            if "Seq Scan" in line:
                indexes.append("SEQ SCAN " + line.split("Seq Scan on ")[1].split()[0])
        took = next((line.split(":")[1].strip() for line in lines if line.startswith("Execution Time")), "?")
        found.append(f"{', '.join(indexes) or '-'} [{took}]")
    return " + ".join(found)


if __name__ == "__main__":
    main()
