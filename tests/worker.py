"""A real Celery worker process against the configured broker and the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _worker_env() -> dict[str, str]:
    """Environment for the worker: same broker and folders, pointed at the *test* database."""
    env = dict(os.environ)
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["LOUPE_SQLITE_PATH"] = str(settings["NAME"])
    else:
        user = settings.get("USER") or ""
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        host = settings.get("HOST") or "127.0.0.1"
        port = f":{settings['PORT']}" if settings.get("PORT") else ""
        auth = f"{user}{password}@" if user else ""
        env["DATABASE_URL"] = f"postgres://{auth}{host}{port}/{settings['NAME']}"
    env["DB_CONN_MAX_AGE"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    env["LOUPE_TEST_WORKER"] = "1"  # tests/celery_app.py: the hook that slows marked runs' epochs
    return env


def _purge_queues() -> None:
    from tests.celery_app import app  # in this process's broker namespace
    from workflow_site.celery import ensure_broker_folders

    ensure_broker_folders()
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in ("default", "ml"):
            try:
                channel.queue_purge(queue)
            except Exception:  # a queue that does not exist yet has nothing to purge
                pass


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(" ready." in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("Celery worker did not start:\n" + "\n".join(self.lines[-40:]))

    def log(self) -> str:
        """The last lines the worker printed: for a failure message only; tests assert on state."""
        return "\n".join(self.lines[-60:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def worker_popen(*, app: str, queues: str, name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A solo-pool Celery worker process for `app` on `queues`, its output piped for diagnostics."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            queues,
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    with django_db_blocker.unblock():
        env = _worker_env()
    _purge_queues()
    # the project's app, in this test process's broker namespace
    process = worker_popen(app="tests.celery_app", queues="default,ml", name="test-worker", env=env)
    worker = WorkerProcess(process)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def live_worker(celery_worker_process: WorkerProcess, transactional_db) -> Iterator[WorkerProcess]:
    """Tasks go through the real broker to the worker process (no eager mode)."""
    from workflow_site.celery import app

    app.conf.task_always_eager = False
    yield celery_worker_process
    app.conf.task_always_eager = True


def wait_for(predicate, timeout: float, worker: WorkerProcess, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"Timed out waiting for {what}. Worker log:\n{worker.log()}")
