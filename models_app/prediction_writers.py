"""Who writes a refresh's chunks, and how two predictors of one version keep out of each other's way.

Why several writers: of a million items' refresh on PostgreSQL, most of the
time is the item UPDATE (a new row version and an entry in each of the item's
indexes), done by one server process on one core while the other waits. With
two writers, each with its own connection, one chunk's UPDATE runs beside
another's COPY and UPDATE (bench/predictions.py).

What still holds:

- **Each chunk is one transaction**, whole or not at all, as with one writer.
  A failure stops the refresh: the chunks already handed over are finished,
  no new one is started, and the first error is raised to the caller.
- **One predictor per model version at a time**: the refresh holds an
  advisory lock on its version (PostgreSQL) from before its first chunk to
  after its last (session-level; inside a caller's transaction, that
  transaction's), so a second refresh of the same version (a
  redelivered task, or the task racing a direct call) waits, then finds every
  item already predicted. Within a run the chunks hold disjoint items, so the
  writers never contend for a row. The lock is the first in the lock order
  (README, "Lock order"): it is taken before any transaction of the run.
- **Bounded memory**: at most one chunk waits per writer.

Only outside a transaction: inside one, another connection could not see the
caller's uncommitted rows, so the caller's own connection writes every chunk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from django.db import connection

Chunk = TypeVar("Chunk")

# The advisory lock's first key: this lock's namespace (the second is the model version's id).
_PREDICTION_RUN_LOCK = 0x4C505244  # "LPRD"


def prediction_writers(chunks: int) -> int:
    """How many connections write a refresh of `chunks` chunks: LOUPE_PREDICTION_WRITERS on PostgreSQL
    outside a transaction, else one (the caller's)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, min(settings.LOUPE_PREDICTION_WRITERS, chunks))


@contextmanager
def prediction_run_lock(model_version_id: int) -> Iterator[None]:
    """Hold the version's prediction lock for the block (PostgreSQL; SQLite serialises its writers anyway).

    Outside a transaction the lock is session-level, so it spans the run's many
    transactions, and ends with the connection if the process dies. Inside the
    caller's transaction it is that transaction's (released at its commit or
    rollback): every chunk is written in it, and a session-level unlock could not
    run in a transaction an error had aborted, which would leave the lock held.
    """
    if connection.vendor != "postgresql":
        yield
        return
    key = [_PREDICTION_RUN_LOCK, model_version_id]
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def chunks_written(chunks: Iterable[Chunk], write: Callable[[Chunk], int], *, writers: int) -> int:
    """Write each chunk with `write` (one transaction each) on `writers` threads; returns the sum of what
    `write` returned. With one writer, the caller's thread and connection write, in order."""
    if writers <= 1:
        return sum(write(chunk) for chunk in chunks)
    jobs: queue.Queue[Chunk | None] = queue.Queue(maxsize=writers)
    written = [0] * writers
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            while (chunk := jobs.get()) is not None:
                if errors:  # another writer failed: take what is left off the queue, start nothing new
                    continue
                try:
                    written[slot] += write(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                    errors.append(exc)
        finally:
            connection.close()  # this thread's own connection (Django's are per thread)

    threads = [
        threading.Thread(target=run, args=(slot,), name=f"prediction-writer-{slot}", daemon=True)
        for slot in range(writers)
    ]
    for thread in threads:
        thread.start()
    try:
        for chunk in chunks:
            if errors:
                break
            jobs.put(chunk)
    finally:
        for _ in threads:
            jobs.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return sum(written)
