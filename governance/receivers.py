"""Receivers for the signals models_app sends (wired in GovernanceConfig.ready).

Sent after the sender's transaction committed, so nothing here can roll back a
training run; each receiver owns its own transaction.
"""

from __future__ import annotations

from typing import Any


def on_candidate_registered(sender: Any, model_version_id: int, **_: Any) -> None:
    """Judge the new candidate against the dataset's active change envelope, clause by clause (issue 10,
    point 5), so a candidate outside it is marked a substantial change whether or not anyone asks to
    promote it. Without an envelope nothing is stored. Runs in the worker that trained it."""
    from governance.envelope import envelope_check
    from models_app.models import ModelVersion

    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is not None:  # gone meanwhile: nothing to judge
        envelope_check(model_version=version, actor=None)
