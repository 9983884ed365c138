"""Benchmark: batch prediction of stored items by the champion (read, predict, write).

Usage:  .venv/bin/python bench/predictions.py [--items 100000] [--features 30] [--keep]
        .venv/bin/python bench/predictions.py --reuse DATABASE --artifacts DIR   (both printed by --keep)
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. A model is trained on 400 labelled items through the
real training path and made champion; then every open item is predicted with
`predictions_refresh` (the task the worker runs after an import or a promotion),
and the figures are printed: items/s overall, and where the time went.

Issue 7's target: 1,000,000 stored items in <= 60 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
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
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="print the 15 costliest functions")
    parser.add_argument("--keep", action="store_true", help="keep the test database afterwards (its name is printed)")
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="time again on a database kept by --keep: its champion's predictions are removed first (the table"
        " then holds the dead rows of the earlier run, as after a real re-prediction; VACUUM runs before timing)",
    )
    parser.add_argument("--artifacts", metavar="DIR", help="with --reuse: the model artifacts' folder --keep printed")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    if args.reuse:
        from django.conf import settings

        if not args.artifacts:
            parser.error("--reuse needs --artifacts (printed by --keep)")
        settings.ARTIFACT_ROOT = args.artifacts
        connection.settings_dict["NAME"] = args.reuse
        connection.close()
        rerun(args.profile, connection)
        return
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.items, args.features, args.profile, connection)
    finally:
        if args.keep:
            from django.conf import settings

            print(f"kept database {connection.settings_dict['NAME']} (model artifacts in {settings.ARTIFACT_ROOT})")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(n_items: int, n_features: int, profile: bool, connection) -> None:  # type: ignore[no-untyped-def]
    import random
    import tempfile

    from django.conf import settings
    from django.contrib.auth.models import User
    from django.utils import timezone

    from annotations.models import Dataset, Feature, GoldLabel, ImportBatch, Item, LabelClass
    from models_app.models import ModelVersion, TrainingRun
    from models_app.services import training_run_request
    from models_app.training import training_run_execute
    from workflow_site.celery import app

    app.conf.task_always_eager = True
    settings.ARTIFACT_ROOT = tempfile.mkdtemp(prefix="loupe-bench-artifacts-")
    names = [f"f{i}" for i in range(n_features)]
    dataset = Dataset.objects.create(name="Bench", slug="bench")
    for i, name in enumerate(names):
        Feature.objects.create(dataset=dataset, position=i, name=name, dtype="float", normal_min=0, normal_max=1)
    labels = [LabelClass.objects.create(dataset=dataset, position=i, name=n) for i, n in enumerate(["yes", "no"])]
    user = User.objects.create_user("bench-admin", password="x" * 12)
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
    n_labelled, n_holdout = 400, 200
    started = time.monotonic()
    for start in range(0, n_items + n_labelled + n_holdout, 20_000):
        stop = min(start + 20_000, n_items + n_labelled + n_holdout)
        Item.objects.bulk_create(
            [
                Item(
                    dataset=dataset,
                    batch=batch,
                    external_id=f"b{i}",
                    values={name: rng.random() for name in names},
                    source_file="bench.csv",
                    source_row=i + 2,
                    content_hash=f"{i:064d}",
                    queue_state="holdout" if i >= n_items + n_labelled else "open",
                )
                for i in range(start, stop)
            ],
            batch_size=5000,
        )
    now = timezone.now()
    labelled = list(Item.objects.filter(dataset=dataset).order_by("-pk")[: n_labelled + n_holdout])
    for item in labelled:
        if item.queue_state == "open":
            item.queue_state = "done"
    Item.objects.bulk_update(labelled, ["queue_state"], batch_size=2000)
    GoldLabel.objects.bulk_create(
        [
            GoldLabel(
                item=item,
                dataset=dataset,
                label=labels[int(item.values["f0"] + item.values["f1"] > 1)],
                origin="import",
                updated_at=now,
            )
            for item in labelled
        ]
    )
    took = time.monotonic() - started
    print(f"{connection.vendor}: {n_items:,} open items with {n_features} features created in {took:.1f}s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE annotations_item")

    run_ = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.SEED, requested_by=user, reason="bench", dispatch=False
    )
    version = training_run_execute(run_id=run_.pk)
    assert version is not None, TrainingRun.objects.get(pk=run_.pk).error
    # Crown it without champion_set, whose after-commit refresh is the very thing timed below.
    ModelVersion.objects.filter(pk=version.pk).update(stage=ModelVersion.Stage.CHAMPION)
    timed_refresh(dataset, version, n_items, profile, connection)


def rerun(profile: bool, connection) -> None:  # type: ignore[no-untyped-def]
    from annotations.models import Dataset, Item
    from models_app.models import ModelVersion, Prediction

    dataset = Dataset.objects.get(slug="bench")
    version = ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION)
    started = time.monotonic()
    Prediction.objects.filter(model_version=version).delete()
    open_items = Item.objects.filter(dataset=dataset, queue_state="open")
    open_items.update(
        prediction_id=None,
        predicted_by_version=None,
        predicted_label=None,
        predicted_confidence=None,
        predicted_probabilities=None,
        prediction_explanation=None,
        queue_priority=None,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE annotations_item")
        cursor.execute("VACUUM ANALYZE models_app_prediction")
        cursor.execute("CHECKPOINT")
    n_items = open_items.count()
    print(f"reset {n_items:,} open items in {time.monotonic() - started:.1f}s")
    timed_refresh(dataset, version, n_items, profile, connection)


def timed_refresh(dataset, version, n_items: int, profile: bool, connection) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings

    from annotations.models import Item
    from models_app.prediction import predictions_refresh

    profiler = cProfile.Profile() if profile else None
    sql_time: dict[str, float] = {}

    def timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split())[:60]
            sql_time[key] = sql_time.get(key, 0.0) + time.perf_counter() - t0

    if os.environ.get("BENCH_AUTO_EXPLAIN") and connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # plans of slow statements to the server log
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute("SET auto_explain.log_min_duration = 150")
            cursor.execute("SET auto_explain.log_analyze = on")
            cursor.execute("SET auto_explain.log_buffers = on")
            cursor.execute("SET auto_explain.log_triggers = on")
    started = time.monotonic()
    if profiler:
        profiler.enable()
    with connection.execute_wrapper(timed):
        written = predictions_refresh(dataset_id=dataset.pk, model_version_id=version.pk)
    if profiler:
        profiler.disable()
    elapsed = time.monotonic() - started
    shown = Item.objects.filter(dataset=dataset, queue_state="open", predicted_by_version=version.version).count()
    assert written == n_items == shown, (written, n_items, shown)
    print(
        f"predictions_refresh: {written:,} items read, predicted and written (predictions + queue fields) "
        f"in {elapsed:.1f}s = {written / elapsed:,.0f} items/s "
        f"({settings.LOUPE_PREDICTION_WRITERS if connection.vendor == 'postgresql' else 1} writing connections)"
    )
    # Django counts statements per connection: with several writers, theirs (the item UPDATE) are not here.
    print("time in SQL statements on this connection (s):")
    for sql, seconds in sorted(sql_time.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {seconds:6.2f}  {sql}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
