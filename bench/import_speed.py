"""Benchmark: how fast one file goes in (validate, stage, publish), in this process.

Usage:  .venv/bin/python bench/import_speed.py [--rows 100000] [--features 30]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. Runs the same steps a worker runs (import_batch_create)
on a generated CSV (written to disk first, with a label column on two rows in
three), and prints rows/s end to end (file on disk -> items queryable;
predictions excluded), the time of each step from the batch's report, and the
process's peak RSS (the file is never held in memory, so that is the import's:
--rows 4000000 makes a 1 GB file). Issue 7's target: >= 50,000 rows/s on PostgreSQL.
--holdout N first imports an N-row holdout (other random values), so the timed
review-pool file pays the leakage checks against it: feature hashes across the
sets and the near-duplicate search (annotations/import_leakage.py).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("HTTPS", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--holdout", type=int, default=0, help="rows in a holdout imported first (untimed)")
    args = parser.parse_args()

    import tempfile

    os.environ.setdefault("LOUPE_UPLOAD_DIR", tempfile.mkdtemp(prefix="loupe-bench-uploads-"))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args.rows, args.features, connection, args.holdout)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(n_rows: int, n_features: int, connection, n_holdout: int = 0) -> None:  # type: ignore[no-untyped-def]
    import resource
    import tempfile

    from django.contrib.auth.models import User

    from annotations.imports import import_batch_process, import_batch_upload
    from annotations.models import Dataset, Feature, ImportBatch, Item, LabelClass

    dataset = Dataset.objects.create(name="Bench", slug="bench")
    names = [f"f{i}" for i in range(n_features)]
    for i, name in enumerate(names):
        Feature.objects.create(dataset=dataset, position=i, name=name, dtype="float")
    for i, label in enumerate(["yes", "no"]):
        LabelClass.objects.create(dataset=dataset, position=i, name=label)
    user = User.objects.create_user("bench-admin", password="x" * 12)
    if n_holdout:
        from annotations.imports import import_batch_create

        holdout_rng = random.Random(2)
        lines = [",".join(["external_id", *names, "label"])]
        for i in range(n_holdout):
            lines.append(f"h{i}," + ",".join(f"{holdout_rng.random():.5f}" for _ in names) + ",yes")
        import_batch_create(
            dataset=dataset, user=user, file_name="holdout.csv", data="\n".join(lines).encode(), purpose="holdout"
        )
    # The file is written to disk a block at a time, so the process's peak memory is the import's.
    rng = random.Random(1)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as out:
        out.write(",".join(["external_id", *names, "label"]) + "\n")
        for start in range(0, n_rows, 10_000):
            block = []
            for i in range(start, min(start + 10_000, n_rows)):
                values = ",".join(f"{rng.random():.5f}" for _ in names)
                block.append(f"r{i},{values},{'yes' if i % 3 else ''}\n")
            out.write("".join(block))
        path = Path(out.name)
    size = path.stat().st_size
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def chunks():  # type: ignore[no-untyped-def]
        with path.open("rb") as stream:
            while block := stream.read(1024 * 1024):
                yield block

    # The publish commits, then its clean-up starts: that moment is when the items became queryable.
    from annotations import imports

    cleanup_started: list[float] = []
    real_cleanup = imports.batch_cleanup

    def timed_cleanup(finished):  # type: ignore[no-untyped-def]
        cleanup_started.append(time.monotonic())
        return real_cleanup(finished)

    imports.batch_cleanup = timed_cleanup
    started = time.monotonic()
    batch = import_batch_upload(
        dataset=dataset, user=user, file_name="bench.csv", chunks=chunks(), purpose="review", dispatch=False
    )
    stored = time.monotonic()
    outcome = import_batch_process(batch_id=batch.pk)
    elapsed = time.monotonic() - started
    path.unlink()
    assert outcome is not None and outcome.batch.status == ImportBatch.Status.IMPORTED, outcome
    assert Item.objects.filter(dataset=dataset).count() == n_rows + n_holdout
    seconds = outcome.batch.report.get("seconds", {})
    queryable = cleanup_started[0] - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{connection.vendor}: {n_rows:,} rows x {n_features} features ({size / 1e6:,.1f} MB) imported in "
        f"{elapsed:.1f}s = {n_rows / elapsed:,.0f} rows/s end to end (store the upload, check, stage, publish, "
        f"clean up); items queryable after {queryable:.1f}s = {n_rows / queryable:,.0f} rows/s"
    )
    print(f"  storing the upload: {stored - started:.2f}s; steps (s): {seconds}")
    if n_holdout:
        print(f"  against a {n_holdout:,}-row holdout: {outcome.batch.report.get('warning_count', 0)} warning(s)")
    print(f"  peak RSS of this process: {peak:,.0f} MB ({rss_before:,.0f} MB before the import)")


if __name__ == "__main__":
    main()
