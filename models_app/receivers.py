"""Receivers for the signals annotations sends (wired in ModelsAppConfig.ready).

Both signals are sent after the sender's transaction committed, so nothing here
can roll back a reviewer's answer or an import; each receiver owns its own
transaction (or only hands work to the broker).
"""

from __future__ import annotations

from typing import Any


def on_gold_labels_changed(sender: Any, dataset_id: int, **_: Any) -> None:
    """Queue a training run if the dataset's retraining policy is now met."""
    from models_app.services import retraining_policy_check

    retraining_policy_check(dataset_id=dataset_id)


def on_items_imported(sender: Any, dataset_id: int, batch_id: int, **_: Any) -> None:
    """The champion predicts the new open items."""
    from models_app.services import predictions_refresh_dispatch

    predictions_refresh_dispatch(dataset_id=dataset_id, batch_id=batch_id)
