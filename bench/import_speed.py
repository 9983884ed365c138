"""Benchmark: how fast one file goes in (validate, stage, publish), in this process.

Usage:  .venv/bin/python bench/import_speed.py [--rows 100000] [--features 30]
Uses DATABASE_URL when set (PostgreSQL), SQLite otherwise; always in a fresh
throw-away test database. Runs the same steps a worker runs (import_batch_create)
on a generated CSV with a label column, and prints rows/s end to end (file on
disk -> items queryable; predictions excluded) and the time of each step from the
batch's report. Issue 7's target: >= 50,000 rows/s on PostgreSQL.
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
        run(args.rows, args.features, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(n_rows: int, n_features: int, connection) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    from annotations.models import Dataset, Feature, Item, LabelClass
    from annotations.services import import_batch_create

    dataset = Dataset.objects.create(name="Bench", slug="bench")
    names = [f"f{i}" for i in range(n_features)]
    for i, name in enumerate(names):
        Feature.objects.create(dataset=dataset, position=i, name=name, dtype="float")
    for i, label in enumerate(["yes", "no"]):
        LabelClass.objects.create(dataset=dataset, position=i, name=label)
    user = User.objects.create_user("bench-admin", password="x" * 12)
    rng = random.Random(1)
    lines = [",".join(["external_id", *names, "label"])]
    for i in range(n_rows):
        values = ",".join(f"{rng.random():.5f}" for _ in names)
        lines.append(f"r{i},{values},{'yes' if i % 3 else ''}")
    data = ("\n".join(lines) + "\n").encode()
    started = time.monotonic()
    batch = import_batch_create(dataset=dataset, user=user, file_name="bench.csv", data=data, purpose="review")
    elapsed = time.monotonic() - started
    assert Item.objects.filter(dataset=dataset).count() == n_rows
    print(
        f"{connection.vendor}: {n_rows:,} rows x {n_features} features ({len(data) / 1e6:.1f} MB) imported in "
        f"{elapsed:.1f}s = {n_rows / elapsed:,.0f} rows/s"
    )
    print("  steps (s):", batch.report.get("seconds"))


if __name__ == "__main__":
    main()
