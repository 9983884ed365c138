"""Celery tasks: thin wrappers that take primary keys and call the service of the same name."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="models_app.tasks.training_run_execute", acks_late=True)
def training_run_execute(run_id: int) -> None:
    from models_app.training import training_run_execute
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:training_run_execute:{run_id}")
    training_run_execute(run_id=run_id)


@shared_task(name="models_app.tasks.predictions_refresh", acks_late=True)
def predictions_refresh(dataset_id: int, model_version_id: int | None = None, batch_id: int | None = None) -> int:
    from models_app.prediction import predictions_refresh
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:predictions_refresh:{dataset_id}")
    return predictions_refresh(dataset_id=dataset_id, model_version_id=model_version_id, batch_id=batch_id)


@shared_task(name="models_app.tasks.predictions_refresh_sweep")
def predictions_refresh_sweep() -> int:
    from models_app.services import predictions_refresh_sweep

    return predictions_refresh_sweep()


@shared_task(name="models_app.tasks.training_runs_sweep")
def training_runs_sweep() -> int:
    from models_app.services import training_runs_sweep

    return training_runs_sweep()
