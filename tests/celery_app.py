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

__all__ = ["app", "use_broker_namespace"]
