"""Queue strategies as numbers: each open item's score under the dataset's strategy.

Every strategy has a score in [0, 1] where higher means "review this sooner";
the item stores `queue_priority = 1 − score` so that one ascending index range
scan (`item_queue`: dataset, queue state, priority, id) serves every strategy,
and items with no score yet (null priority) come last, in arrival order. The
score of the item a reviewer was served is what the review records
(`selection_score = 1 − queue_priority`), next to the strategy's name.

- least confidence: 1 − p(top class);
- margin: 1 − (p(top) − p(second)); two classes tied score 1;
- entropy: −Σ p log p / log K (K classes), 1 when the model cannot choose at all;
- disagreement: how far a candidate model's probabilities are from the
  champion's (written into `Item.disagreement_score` when a candidate or shadow
  model predicts; none does yet, so the score is missing and items come in
  arrival order);
- label issue: for re-review of gold labels, 1 − cleanlab's label quality of
  the item's current gold label (models_app/label_issues.py writes it when it
  re-opens the likeliest label errors).

Pure numpy: the prediction path calls it on a chunk's probability matrix.
"""

from __future__ import annotations

import numpy as np

from annotations.models import QueueStrategy

# Strategies whose score comes from the champion's probabilities alone.
PROBABILITY_STRATEGIES = (QueueStrategy.LEAST_CONFIDENCE, QueueStrategy.MARGIN, QueueStrategy.ENTROPY)


def strategy_scores(strategy: str, probabilities: np.ndarray) -> np.ndarray | None:
    """Scores in [0, 1] (higher = sooner) for rows of class probabilities; None when the strategy needs more.

    `probabilities` is (rows, classes) and each row sums to 1 (up to rounding).
    """
    proba = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    rows, classes = proba.shape
    if strategy == QueueStrategy.LEAST_CONFIDENCE:
        return 1.0 - proba.max(axis=1)
    if strategy == QueueStrategy.MARGIN:
        if classes < 2:
            return np.zeros(rows)
        top_two = np.sort(proba, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])
    if strategy == QueueStrategy.ENTROPY:
        if classes < 2:
            return np.zeros(rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(proba > 0, proba * np.log(proba), 0.0)
        return np.clip(-terms.sum(axis=1) / np.log(classes), 0.0, 1.0)
    return None


def priorities_from_scores(scores: np.ndarray) -> np.ndarray:
    """The stored queue priority (ascending = served first) for scores, rounded as the review records them."""
    return np.round(1.0 - np.asarray(scores, dtype=float), 6)
