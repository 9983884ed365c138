"""Celery tasks: thin wrappers that take primary keys and call the service of the same name."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)


# Retried only when the database went away (a restart, a failover): the run was put back to queued
# (training.py) and is claimed again. Any other error ends the run as failed with its reason, and
# retrying would only fail again.
@shared_task(
    name="models_app.tasks.training_run_execute",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
)
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


@shared_task(name="models_app.tasks.shadow_predictions_refresh", acks_late=True)
def shadow_predictions_refresh(dataset_id: int, model_version_id: int) -> int:
    """A version just put in shadow predicts the open items (does nothing if it has left shadow since)."""
    from models_app.models import ModelVersion
    from models_app.shadow import shadow_predictions_refresh
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:shadow_predictions_refresh:{dataset_id}")
    if not ModelVersion.objects.filter(pk=model_version_id, shadow_since__isnull=False).exists():
        return 0
    return shadow_predictions_refresh(dataset_id=dataset_id)


@shared_task(name="models_app.tasks.predictions_refresh_sweep")
def predictions_refresh_sweep() -> int:
    from models_app.services import predictions_refresh_sweep

    return predictions_refresh_sweep()


@shared_task(name="models_app.tasks.training_runs_sweep")
def training_runs_sweep() -> int:
    from models_app.services import training_runs_sweep

    return training_runs_sweep()


# acks_late off (the site default is on): a redelivered message would reopen another `limit`
# gold labels, since the first delivery's are no longer done. A worker lost mid-job loses
# nothing but the job (nothing is written until its one transaction), and it can be asked again.
@shared_task(name="models_app.tasks.label_issues_reopen", queue="ml", acks_late=False)
def label_issues_reopen(dataset_id: int, user_id: int | None, limit: int) -> int:
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    from annotations.models import Dataset
    from models_app.label_issues import label_issues_reopen
    from workflow_site.request_id import set_request_id

    set_request_id(f"task:label_issues_reopen:{dataset_id}")
    user = None
    if user_id is not None:
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            return 0  # the requester was removed meanwhile: nobody to act for
    try:
        return len(label_issues_reopen(dataset_id=dataset_id, user=user, limit=limit).reopened)
    except Dataset.DoesNotExist:
        return 0
    except ValidationError as exc:  # the labels cannot be scored: nothing changed, and retrying will not help
        logger.warning("Dataset %s: label issues not computed: %s", dataset_id, "; ".join(exc.messages))
        return 0
