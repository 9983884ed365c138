"""A second, killable Celery worker for the kill -9 test (tests/models_app/test_worker_kill.py).

Used two ways:
- as the worker's app module (``celery -A tests.worker_kill``): the project's app in
  this test process's broker namespace (tests/celery_app.py) and, when
  LOUPE_TEST_SLOW_FIT_S is set in the worker's environment, a fit that first sleeps
  that long, so that the test can kill the worker while its run is `running`;
- from the test: ``killable_worker_start`` starts it on a private queue, so the
  session's worker (tests/worker.py) never takes the message meant for it.
"""

from __future__ import annotations

import os
import time

from tests.celery_app import app
from tests.worker import WorkerProcess, _worker_env, worker_popen

SLOW_FIT_ENV = "LOUPE_TEST_SLOW_FIT_S"

if os.environ.get(SLOW_FIT_ENV):
    from celery.signals import task_prerun

    _pause = float(os.environ[SLOW_FIT_ENV])

    @task_prerun.connect(weak=False)
    def _slow_down_the_fit(**_: object) -> None:
        """Patched at the first task, once Django is set up (models_app.training needs the app registry)."""
        from models_app import training

        if getattr(training.model_fit, "slowed", False):
            return
        fit = training.model_fit

        def slow_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(_pause)
            return fit(*args, **kwargs)

        slow_fit.slowed = True  # type: ignore[attr-defined]
        training.model_fit = slow_fit


def killable_worker_start(*, queue: str, env: dict[str, str]) -> WorkerProcess:
    """Start a solo-pool worker on `queue` only; call with the database unblocked (for _worker_env)."""
    process = worker_popen(app="tests.worker_kill", queues=queue, name="kill-worker", env={**_worker_env(), **env})
    worker = WorkerProcess(process)
    worker.wait_ready()
    return worker


__all__ = ["app", "killable_worker_start"]
