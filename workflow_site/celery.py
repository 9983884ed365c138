"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_site.settings")

app = Celery("workflow_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """The filesystem transport needs its folders before the first message."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **_: object) -> None:
    ensure_broker_folders()


# Native thread pools (BLAS, OpenMP: scikit-learn's boosting, numpy) start one thread per core in every worker
# process. With --concurrency 2 on 2 cores that is four busy threads fighting for two cores, and a fit ran 20-30x
# slower than with one thread (measured on boosting, issue 9). One thread per worker process by default; the
# worker's concurrency is how a machine's cores are used. LOUPE_ML_THREADS raises it on a worker with spare cores.
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("LOUPE_ML_THREADS", "1"))


@worker_init.connect
@beat_init.connect
def _database_checks_at_first_connection(**_: object) -> None:
    """The privileged-role warnings (loupe.W004, W005) when the worker (each pool process, which inherits the
    receiver) or beat first connects to the database: never at import, so `manage.py` commands that load this
    app (migrate, makemigrations) are untouched (workflow_site/checks.py)."""
    from workflow_site.checks import database_checks_at_first_connection

    database_checks_at_first_connection()


@worker_process_init.connect
def _limit_native_threads(**_: object) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ.get("LOUPE_ML_THREADS", "1")))
