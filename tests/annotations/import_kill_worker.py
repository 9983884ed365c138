"""A killable Celery worker whose import pauses after its first staged chunk (tests/annotations/test_import_kill.py).

Used as the worker's app module (``celery -A tests.annotations.import_kill_worker``):
the project's app in this test process's broker namespace (tests/celery_app.py).
With LOUPE_TEST_SLOW_STAGE_S set in the worker's environment, imports stage two
rows per transaction and, once the first chunk is committed, wait that long
before preparing the next one (outside any transaction, so the database stays
free), so that the test can kill the worker while its batch is `staging`. On
PostgreSQL the chunks go straight into items, in the writer's open transaction
(annotations/import_direct.py): there the pause comes once the first chunk's
progress is recorded.
"""

from __future__ import annotations

import itertools
import os
import time

from celery.signals import worker_ready

from tests.celery_app import app

SLOW_STAGE_ENV = "LOUPE_TEST_SLOW_STAGE_S"


@worker_ready.connect
def _slow_staging(**_: object) -> None:
    """Patched once the worker is up (Django is set up by then), before it takes a task."""
    if not os.environ.get(SLOW_STAGE_ENV):
        return
    from annotations import imports

    pause = float(os.environ[SLOW_STAGE_ENV])
    real_stage_chunk = imports._stage_chunk
    calls = itertools.count()
    imports.STAGE_CHUNK_ROWS = 2

    def slow_stage_chunk(batch, rows, rows_done):  # type: ignore[no-untyped-def]
        seconds = real_stage_chunk(batch, rows, rows_done)
        if next(calls) == 0:  # the first chunk is committed: wait before the next
            time.sleep(pause)
        return seconds

    imports._stage_chunk = slow_stage_chunk
    real_written_directly = imports._written_directly

    def slow_written_directly(batch, rows_done):  # type: ignore[no-untyped-def]
        real_written_directly(batch, rows_done)
        if rows_done == 2:
            time.sleep(pause)

    imports._written_directly = slow_written_directly


__all__ = ["SLOW_STAGE_ENV", "app"]
