"""Replay for fine-tuning (issue 9, point 4): new gold labels mixed with a seeded sample of earlier ones.

A model fine-tuned only on the latest corrections drifts toward them and forgets what it knew
(catastrophic forgetting); replaying a sample of the rows it was trained on before keeps the old
decision boundary in the loss. Pure numpy, no torch: the training run picks the rows before it
knows which family will fit them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def replay_sample(
    new_indices: Sequence[int] | np.ndarray,
    old_indices: Sequence[int] | np.ndarray,
    replay_fraction: float,
    seed: int,
) -> np.ndarray:
    """All of `new_indices` plus a seeded sample of `old_indices`, sorted and without duplicates.

    `replay_fraction` in [0, 1) is the share of the result drawn from the old rows: 0.5 gives as
    many old rows as new ones; fewer when there are not enough old rows (all of them are used).
    The sample depends only on the sets and the seed, not on the order the indices come in; an
    index in both lists counts as new.
    """
    if not 0.0 <= replay_fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), not {replay_fraction!r}.")
    new = np.unique(np.asarray(new_indices, dtype=np.int64))
    old = np.setdiff1d(np.asarray(old_indices, dtype=np.int64), new)  # sorted, unique
    wanted = int(round(len(new) * replay_fraction / (1.0 - replay_fraction)))
    take = min(wanted, len(old))
    chosen = np.random.default_rng(seed).choice(old, size=take, replace=False) if take else old[:0]
    return np.union1d(new, chosen)
