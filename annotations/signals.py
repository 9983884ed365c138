"""Signals annotations sends to apps it must not import, always after its transaction commits.

- gold_labels_changed(sender=Dataset, dataset_id=...): a review changed a gold label.
- items_imported(sender=Dataset, dataset_id=..., batch_id=...): an import committed.

They are sent with `send_after_commit`, so a receiver never runs inside the
sender's transaction: it cannot roll back a reviewer's answer or an import,
and it takes its own locks in its own transaction (DESIGN.md, lock order). A
receiver that raises is logged and does not fail the request; what it missed
is caught up by a beat sweep (see models_app.services).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal

gold_labels_changed = Signal()
items_imported = Signal()


def send_after_commit(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send `signal` once the current transaction commits (at once outside one).

    send_robust: a receiver that raises is logged by Django (logger
    "django.dispatch") and does not reach the request that made the change.
    """
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **kwargs))
