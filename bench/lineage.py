"""Benchmark: the lineage page and its JSON (issue 10, point 7; target: under 100 ms server time for an item
of a 1M-item dataset).

Usage:  DATABASE_URL=postgres://... .venv/bin/python bench/lineage.py [--items 1000000] [--repeat 100] [--keep]
PostgreSQL only (the rows are written with generate_series), always in a throw-away test
database (--keep: one kept database, refilled only when --items changes). The dataset is
bench/item_list.py's (items, gold labels, 1-3 reviews per reviewed item from 16 reviewers),
plus what the lineage walks: two training runs on two snapshots (every other reviewed item,
then all of them: ~75k and ~150k labels at 1M items), model v1 (champion, approved and
signed) and v2 (candidate), their evaluations, and a prediction by each version of every
item (2M predictions at 1M items).

Prints p50/p95 milliseconds over --repeat calls, for a reviewed item in the middle of the
dataset, model version v2 and the larger snapshot: the selector alone (lineage_for_user),
then the whole request through the test client (middleware, session, the page rendered, or
the JSON encoded), with the query count of each.
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
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the test database for the next run")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only: set DATABASE_URL=postgres://...")
    setup_test_environment()
    if args.keep:
        connection.settings_dict["TEST"]["NAME"] = f"bench_lineage_{connection.settings_dict['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    try:
        run(args.items, args.repeat, connection)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def _fill(n: int, connection) -> dict:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from annotations.models import GoldLabel, Item, Review
    from bench.item_list import _fill_postgresql, _people
    from governance.models import PromotionRequest, Signature
    from models_app.models import (
        DatasetSnapshot,
        Evaluation,
        ModelVersion,
        Prediction,
        SnapshotLabel,
        TrainingRun,
        TrainingTrigger,
    )

    dataset, labels, reviewers, admin = _people()
    _fill_postgresql(n, dataset, labels, reviewers, admin, connection)
    signer = User.objects.create_user("bench-admin2", password="x" * 12)
    signer.groups.add(Group.objects.get_or_create(name="model_admin")[0])
    item, gold, review = Item._meta.db_table, GoldLabel._meta.db_table, Review._meta.db_table
    snap_label, prediction = SnapshotLabel._meta.db_table, Prediction._meta.db_table
    versions = []
    for number, every in ((1, 2), (2, 1)):
        snapshot = DatasetSnapshot.objects.create(dataset=dataset, label_count=0, content_hash=f"{number}" * 64)
        with connection.cursor() as cursor:
            # The reviewed items' gold labels (holdout never), each with its first review.
            cursor.execute(
                f"""
                INSERT INTO {snap_label} (snapshot_id, item_id, label_id, gold_label_id, review_id)
                SELECT {snapshot.pk}, g.item_id, g.label_id, g.id,
                       (SELECT min(r.id) FROM {review} r WHERE r.item_id = g.item_id)
                FROM {gold} g JOIN {item} i ON i.id = g.item_id
                WHERE i.dataset_id = {dataset.pk} AND i.queue_state = 'done' AND g.item_id % {every} = 0
                """
            )
            count = cursor.rowcount
        DatasetSnapshot.objects.filter(pk=snapshot.pk).update(label_count=count)
        run = TrainingRun.objects.create(
            dataset=dataset, trigger="manual", requested_by=admin, status="succeeded", snapshot=snapshot
        )
        TrainingTrigger.objects.create(dataset=dataset, kind="manual", requested_by=admin, run=run, snapshot=snapshot)
        version = ModelVersion.objects.create(
            dataset=dataset,
            version=number,
            algorithm="logistic_regression",
            training_run=run,
            snapshot=snapshot,
            artifact_path=f"bench/v{number}.skops",
            artifact_sha256=f"{number}" * 64,
            feature_names=["x"],
            class_names=[label.name for label in labels],
            stage="champion" if number == 1 else "candidate",
        )
        metrics = {"accuracy": 0.9, "n": 1000}
        Evaluation.objects.create(
            training_run=run, model_version=version, role="candidate", holdout_size=1000, holdout_hash="h" * 64,
            metrics=metrics,
        )  # fmt: skip
        if versions:
            Evaluation.objects.create(
                training_run=run, model_version=versions[0], role="champion", holdout_size=1000,
                holdout_hash="h" * 64, metrics=metrics,
            )  # fmt: skip
        # A prediction of every item; v1's carry the ids the items and reviews already point to.
        id_column = "i.prediction_id" if number == 1 else f"nextval(pg_get_serial_sequence('{prediction}', 'id'))"
        where = "i.prediction_id IS NOT NULL" if number == 1 else "TRUE"
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {prediction} (id, item_id, model_version_id, label_id, confidence, probabilities,
                                          created_at)
                SELECT {id_column}, i.id, {version.pk}, COALESCE(i.predicted_label_id, {labels[0].pk}),
                       COALESCE(i.predicted_confidence, 0.5), '{{}}'::jsonb, now()
                FROM {item} i WHERE i.dataset_id = {dataset.pk} AND {where}
                """
            )
            if number == 1:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{prediction}', 'id'), (SELECT max(id) FROM {prediction}))"
                )
        versions.append(version)
    signature = Signature.objects.create(
        signer=signer,
        printed_name="Bench Signer",
        meaning="approval",
        signed_at=timezone.now(),
        record_type="model_version",
        record_id=str(versions[0].pk),
        record_hash="s" * 64,
    )
    PromotionRequest.objects.create(
        model_version=versions[0],
        requested_by=admin,
        reason="bench",
        status="approved",
        decided_by=signer,
        decided_at=timezone.now(),
        signature=signature,
    )
    with connection.cursor() as cursor:
        for table in (snap_label, prediction):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return {"dataset": dataset}


def run(n_items: int, repeat: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.urls import reverse

    from annotations.models import Dataset, Item
    from governance.lineage import lineage_for_user
    from models_app.models import DatasetSnapshot, ModelVersion, Prediction

    started = time.monotonic()
    dataset = Dataset.objects.filter(slug="bench").first()
    if dataset is None or Item.objects.filter(dataset=dataset).count() != n_items:
        if dataset is not None:
            raise SystemExit("The kept database holds another number of items: run once without --keep.")
        dataset = _fill(n_items, connection)["dataset"]
    auditor, _ = User.objects.get_or_create(username="bench-auditor")
    auditor.groups.add(Group.objects.get_or_create(name="auditor")[0])
    print(
        f"{connection.vendor}: {n_items:,} items, {Prediction.objects.count():,} predictions, "
        f"ready in {time.monotonic() - started:.1f}s"
    )
    middle = Item.objects.filter(dataset=dataset, queue_state="done", pk__gte=n_items // 2).order_by("pk").first()
    v2 = ModelVersion.objects.get(dataset=dataset, version=2)
    snapshot = DatasetSnapshot.objects.filter(dataset=dataset).order_by("-label_count").first()
    cases = [("item", middle.pk), ("model-version", v2.pk), ("snapshot", snapshot.pk)]

    client = Client()
    client.force_login(auditor)
    print(f"{'start node':<28} {'queries':>7} {'p50 ms':>7} {'p95 ms':>7}")
    for kind, pk in cases:
        user = User.objects.get(pk=auditor.pk)
        url = reverse("governance:lineage", args=[kind, pk])
        for name, call in (
            ("selector", lambda: lineage_for_user(user=User.objects.get(pk=auditor.pk), kind=kind, pk=pk)),  # noqa: B023
            ("page", lambda: _ok(client.get(url))),  # noqa: B023
            ("json", lambda: _ok(client.get(url, {"format": "json"}))),  # noqa: B023
        ):
            call()  # warm
            # Counted by an execute wrapper: the test client's request_started resets connection.queries.
            counter = _QueryCounter()
            with connection.execute_wrapper(counter):
                call()
            timings = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                call()
                timings.append((time.perf_counter() - t0) * 1000)
            timings.sort()
            p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
            label = f"{kind} {pk} {name}"
            print(
                f"{label:<28} {counter.count:>7} {statistics.median(timings):7.2f} {p95:7.2f}"
                f"   (one call: {counter.ms:.1f} ms in the database; slowest: {counter.slowest()})"
            )
        del user
        _plans(lambda: lineage_for_user(user=User.objects.get(pk=auditor.pk), kind=kind, pk=pk), connection)  # noqa: B023


def _plans(call, connection) -> None:  # type: ignore[no-untyped-def]
    """Each query of one call, EXPLAIN ANALYZE'd: its execution time in the server and the indexes it used."""
    import re

    counter = _QueryCounter()
    with connection.execute_wrapper(counter):
        call()
    for _, sql, params in counter.each:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN ANALYZE " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
        indexes = sorted({i for line in lines for i in re.findall(r"\busing (\w+)", line)})
        seq = sorted({line.split("Seq Scan on ")[1].split()[0] for line in lines if "Seq Scan on " in line})
        took = next((line.split(":")[1].strip() for line in lines if line.startswith("Execution Time")), "?")
        what = " ".join(sql.split())[:60]
        print(f"    {took:>10}  {', '.join(indexes) or '-'}{'  SEQ SCAN ' + ', '.join(seq) if seq else ''}  [{what}]")


class _QueryCounter:
    def __init__(self) -> None:
        self.count, self.ms, self.each = 0, 0.0, []

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = (time.perf_counter() - t0) * 1000
            self.count += 1
            self.ms += took
            self.each.append((took, sql, params))

    def slowest(self) -> str:
        took, sql, _ = max(self.each, key=lambda e: e[0])
        return f"{took:.1f} ms {' '.join(sql.split())[:90]}"


def _ok(response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return response


if __name__ == "__main__":
    main()
