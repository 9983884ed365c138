"""Celery tasks: thin wrappers that take primary keys and call one service."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="models_app.tasks.train_model", acks_late=True)
def train_model(run_id: int) -> None:
    from governance.request_context import set_request_id
    from models_app.training import training_run_execute

    set_request_id(f"task:train_model:{run_id}")
    training_run_execute(run_id=run_id)


@shared_task(name="models_app.tasks.predict_items", acks_late=True)
def predict_items(dataset_id: int, model_version_id: int | None = None, batch_id: int | None = None) -> None:
    """Predict open items with the champion (only while it is still the champion)."""
    from governance.request_context import set_request_id
    from models_app.models import ModelVersion
    from models_app.prediction import open_item_ids, predictions_create

    set_request_id(f"task:predict_items:{dataset_id}")
    champion = ModelVersion.objects.filter(dataset_id=dataset_id, stage=ModelVersion.Stage.CHAMPION).first()
    if champion is None or (model_version_id is not None and champion.pk != model_version_id):
        logger.info("Dataset %s: champion changed or missing; skipping prediction.", dataset_id)
        return
    item_ids = open_item_ids(dataset_id, batch_id, stale_for_version=champion.version)
    predictions_create(model_version=champion, item_ids=item_ids, update_items=True)


@shared_task(name="models_app.tasks.refresh_stale_predictions")
def refresh_stale_predictions() -> int:
    """Beat: open items not showing their champion's prediction (a send lost while the broker was down)."""
    from models_app.services import predictions_refresh_stale

    return predictions_refresh_stale()


@shared_task(name="models_app.tasks.dispatch_queued_runs")
def dispatch_queued_runs() -> int:
    from models_app.services import training_runs_redispatch

    return training_runs_redispatch()
