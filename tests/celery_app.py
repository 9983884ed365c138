"""The project's Celery app, with its broker keys in the namespace of one test process.

Several test processes may share one Redis: xdist workers, two developers' runs,
parallel CI jobs. Redis queues are plain keys, so without a namespace one run's
Celery worker would take another run's tasks (for a run in another test database)
and both would fail or hang. kombu's ``global_keyprefix`` puts every key a test
process uses (queues, bindings, unacked messages) under its own prefix; the
filesystem broker ignores the option (its folder is per process already).

tests/env.py names the namespace (in the environment, so the worker process that
tests/worker.py starts inherits it), the session fixture in conftest.py applies
it to the test process's app, and the worker runs ``celery -A tests.celery_app``.
"""

from __future__ import annotations

import os

from celery import Celery

from workflow_site.celery import app

NAMESPACE_ENV = "LOUPE_TEST_BROKER_NAMESPACE"


def use_broker_namespace(celery_app: Celery, namespace: str) -> None:
    options = dict(celery_app.conf.broker_transport_options or {})
    options["global_keyprefix"] = namespace
    celery_app.conf.broker_transport_options = options


if os.environ.get(NAMESPACE_ENV):
    use_broker_namespace(app, os.environ[NAMESPACE_ENV])


# A run whose reason carries this marker reports each epoch a little late (SLOW_EPOCH_S), so a browser test can
# watch "epoch i of N" live on the run page, which polls every 2 s: on PostgreSQL 200 epochs otherwise take under
# 3 s and a poll may miss them all. Any other run trains at full speed; production code has no such hook.
SLOW_EPOCHS_MARKER = "[slow epochs]"
SLOW_EPOCH_S = 0.03


def _slow_epochs_for_marked_runs(**_: object) -> None:
    """Patched at the first task, once Django is set up (models_app.training needs the app registry)."""
    import time

    from models_app import training
    from models_app.models import TrainingRun

    if getattr(training.model_fit, "watches_for_marker", False):
        return
    fit = training.model_fit

    def fit_with_visible_epochs(*args, **kwargs):  # type: ignore[no-untyped-def]
        progress = kwargs.get("progress")
        running = TrainingRun.objects.filter(status="running", reason__contains=SLOW_EPOCHS_MARKER)
        if progress is not None and running.exists():

            def slow_progress(fraction, stage, epoch):  # type: ignore[no-untyped-def]
                time.sleep(SLOW_EPOCH_S)
                progress(fraction, stage, epoch)

            kwargs["progress"] = slow_progress
        return fit(*args, **kwargs)

    fit_with_visible_epochs.watches_for_marker = True  # type: ignore[attr-defined]
    training.model_fit = fit_with_visible_epochs


WORKER_ENV = "LOUPE_TEST_WORKER"  # set by tests/worker.py for the session's worker process only

if os.environ.get(WORKER_ENV):
    from celery.signals import task_prerun

    task_prerun.connect(_slow_epochs_for_marked_runs, weak=False)

__all__ = ["app", "use_broker_namespace"]
