"""Benchmark: a 200,000-row import in a real Celery worker while a reviewer keeps reviewing (SQLite default).

Usage:  .venv/bin/python bench/import_while_reviewing.py [--rows 200000] [--pool 3000]

Everything is throw-away: a fresh SQLite file, broker folder and upload folder
under a temporary directory, and a solo-pool worker process started for the run
(the embedded default, as `make run` starts it). The reviewer (Django's test
client, in this process) loops: review page, submit, and every 10th step a
login; before each step it times an empty write transaction (BEGIN IMMEDIATE),
which is exactly how long a writer waits for SQLite's write lock at that moment.

Prints: the upload request's time, the import's time and rows/s (upload to
published), the progress values seen, the reviewer's steps, errors, and write-lock
waits (p50 / max), and the slowest review step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _environment(scratch: Path) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "workflow_site.settings",
        "SECRET_KEY": "bench-only",
        "HTTPS": "false",
        "LOUPE_PLAIN_STATIC": "true",
        "LOUPE_VAR_DIR": str(scratch),
        "LOUPE_SQLITE_PATH": str(scratch / "bench.sqlite3"),
        "LOUPE_BROKER_DIR": str(scratch / "broker"),
        "LOUPE_UPLOAD_DIR": str(scratch / "uploads"),
        "LOUPE_ARTIFACT_DIR": str(scratch / "artifacts"),
        "DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pool", type=int, default=3000, help="open items for the reviewer")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="loupe-bench-import-"))
    env = _environment(scratch)
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name is allowed
    call_command("migrate", verbosity=0)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workflow_site", "worker", "-Q", "default,ml", "--pool", "solo"]
        + ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        run(args.rows, args.pool)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _csv(rows: int, start: int, labelled: bool) -> bytes:
    lines = ["external_id,a,b,c" + (",label" if labelled else "")]
    for i in range(start, start + rows):
        line = f"r{i:07d},{(i % 97) / 97:.4f},{(i % 89) / 89:.4f},{(i % 83) / 83:.4f}"
        lines.append(line + (f",{'yes' if i % 2 else 'no'}" if labelled else ""))
    return ("\n".join(lines) + "\n").encode()


def run(n_rows: int, n_pool: int) -> None:
    import re

    from django.contrib.auth.models import Group, User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction
    from django.test import Client
    from django.urls import reverse

    from annotations.imports import import_batch_create
    from annotations.models import Dataset, DatasetMembership, Feature, ImportBatch, Item, LabelClass

    dataset = Dataset.objects.create(name="Bench", slug="bench")
    for i, name in enumerate(["a", "b", "c"]):
        Feature.objects.create(dataset=dataset, position=i, name=name, dtype="float", normal_min=0, normal_max=1)
    for i, name in enumerate(["yes", "no"]):
        LabelClass.objects.create(dataset=dataset, position=i, name=name)
    password = "bench-password-1"
    people = {}
    for name, role in [("bench-reviewer", "reviewer"), ("bench-admin", "model_admin")]:
        user = User.objects.create_user(name, password=password)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        DatasetMembership.objects.create(dataset=dataset, user=user)
        people[role] = user
    import_batch_create(
        dataset=dataset,
        user=people["model_admin"],
        file_name="pool.csv",
        data=_csv(n_pool, 9_000_000, False),
        purpose="review",
    )
    admin, reviewer = Client(), Client()
    admin.force_login(people["model_admin"])
    reviewer.force_login(people["reviewer"])
    # Warm up (URL resolver, templates, the worker's first task) so the figures are about the import.
    admin.get(reverse("annotations:import", args=[dataset.pk]))
    reviewer.get(reverse("annotations:review", args=[dataset.pk]))
    logins = 0

    def review_step() -> tuple[float, float, list[str]]:
        """Time an empty write transaction, then one review step; (lock wait s, step s, errors)."""
        errors: list[str] = []
        t0 = time.perf_counter()
        with transaction.atomic():  # BEGIN IMMEDIATE: returns once this process has the write lock
            pass
        wait = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            page = reviewer.get(reverse("annotations:review", args=[dataset.pk]))
            found = re.search(r'/review/(\d+)/"', page.content.decode())
            if page.status_code != 200 or found is None:
                errors.append(f"review page {page.status_code}")
            else:
                answer = reviewer.post(
                    reverse("annotations:review_submit", args=[dataset.pk, int(found.group(1))]),
                    {"shown_prediction": "", "label": "yes", "action": "submit", "reason": ""},
                    HTTP_HX_REQUEST="true",
                )
                if answer.status_code != 200 or "was not saved" in answer.content.decode():
                    errors.append(f"submit {answer.status_code}")
        except Exception as exc:  # "database is locked" and the like: what this benchmark counts
            errors.append(f"{type(exc).__name__}: {exc}")
        return wait, time.perf_counter() - t0, errors

    def log_in() -> list[str]:
        nonlocal logins
        logins += 1
        try:
            login = Client().post(reverse("login"), {"username": "bench-reviewer", "password": password})
        except Exception as exc:
            return [f"login {type(exc).__name__}: {exc}"]
        return [] if login.status_code == 302 else [f"login {login.status_code}"]

    # Baseline: the same steps with no import running (this machine, this moment).
    baseline = [review_step() for _ in range(30)]

    data = _csv(n_rows, 0, True)
    print(f"file: {n_rows:,} rows, {len(data) / 1e6:.1f} MB")
    started = time.perf_counter()
    response = admin.post(
        reverse("annotations:import", args=[dataset.pk]),
        {"file": SimpleUploadedFile("large.csv", data, content_type="text/csv"), "purpose": "review"},
    )
    upload_s = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    batch_id = int(response["Location"].rstrip("/").split("/")[-1])

    waits: list[float] = []
    steps: list[float] = []
    errors: list[str] = []
    progress: list[tuple[str, int]] = []
    slow: list[tuple[float, float, str]] = []  # (step s, lock wait s, import status after the step)
    finished_s = None
    deadline = time.perf_counter() + 1800
    while time.perf_counter() < deadline:
        wait, step, problems = review_step()
        waits.append(wait)
        steps.append(step)
        errors += problems
        if len(steps) % 10 == 1:
            errors += log_in()
        status, rows_done = ImportBatch.objects.filter(pk=batch_id).values_list("status", "rows_done").get()
        slow.append((step, wait, status))
        if not progress or progress[-1] != (status, rows_done):
            progress.append((status, rows_done))
        if status in ImportBatch.FINISHED:
            finished_s = time.perf_counter() - started
            break

    batch = ImportBatch.objects.get(pk=batch_id)
    print(f"upload request: {upload_s:.2f} s (store the file, queue the batch)")
    print(
        f"import: {batch.status}, {batch.rows_imported:,} rows in {finished_s:.1f} s upload to published,"
        f" {batch.rows_imported / finished_s:,.0f} rows/s"
    )
    if batch.started_at and batch.finished_at:
        print(f"  in the worker: {(batch.finished_at - batch.started_at).total_seconds():.1f} s claim to published")
    # validate, stage (short transactions) and publish (the one transaction that holds the dataset and write locks)
    print(f"  steps, seconds: {batch.report.get('seconds')}")
    print(f"progress seen: {len(progress)} values, e.g. {progress[:: max(1, len(progress) // 8)]}")
    print(f"reviewer: {len(steps)} steps (review page + submit), {logins} logins, {len(errors)} errors {errors[:5]}")
    print(f"write-lock wait: p50 {statistics.median(waits) * 1000:.1f} ms, max {max(waits) * 1000:.0f} ms")
    print(f"review step: p50 {statistics.median(steps) * 1000:.0f} ms, max {max(steps) * 1000:.0f} ms")
    base_steps = [step for _, step, _ in baseline]
    base_waits = [wait for wait, _, _ in baseline]
    print(
        f"  baseline, no import running: step p50 {statistics.median(base_steps) * 1000:.0f} ms,"
        f" max {max(base_steps) * 1000:.0f} ms; write-lock wait max {max(base_waits) * 1000:.0f} ms;"
        f" {sum(len(e) for _, _, e in baseline)} errors"
    )
    worst = sorted(slow, reverse=True)[:3]
    print(
        "slowest steps (step ms, lock wait before it ms, import status after):",
        [(round(step * 1000), round(wait * 1000), status) for step, wait, status in worst],
    )
    print(f"items in the dataset: {Item.objects.filter(dataset=dataset).count():,}")


if __name__ == "__main__":
    main()
