"""Signals models_app sends to governance, which models_app must not import, after its transaction commits.

- candidate_registered(sender=ModelVersion, model_version_id=...): a training run registered a candidate
  version. Governance judges it against the dataset's change envelope then (issue 10, point 5: every
  training run is checked clause by clause, not only the ones someone asks to promote).

Sent with annotations.signals.send_after_commit: the receiver never runs inside the registration's
transaction, and one that raises is logged without failing the run.
"""

from __future__ import annotations

from django.dispatch import Signal

candidate_registered = Signal()
