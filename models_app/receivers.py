"""Signal receivers connecting annotations to models_app (wired in ModelsAppConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def check_retraining_policy(sender: Any, dataset: Any, **_: Any) -> None:
    from models_app.services import retraining_policy_check

    retraining_policy_check(dataset=dataset)


def predict_imported_items(sender: Any, dataset: Any, batch: Any, **_: Any) -> None:
    """After an import commits, the champion predicts the new open items."""
    from models_app.services import task_send_quietly
    from models_app.tasks import predict_items

    dataset_id, batch_id = dataset.pk, batch.pk
    transaction.on_commit(lambda: task_send_quietly(predict_items, dataset_id, None, batch_id))
