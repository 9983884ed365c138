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
    *,
    labels: Sequence[object] | np.ndarray | None = None,
    min_per_class: int = 0,
) -> np.ndarray:
    """All of `new_indices` plus a seeded sample of `old_indices`, sorted and without duplicates.

    `replay_fraction` in [0, 1) is the share of the result drawn from the old rows: 0.5 gives as
    many old rows as new ones; fewer when there are not enough old rows (all of them are used).
    The sample depends only on the sets and the seed, not on the order the indices come in; an
    index in both lists counts as new.

    With `labels` (the label of every index) and `min_per_class`, every class among the old rows
    ends with at least `min_per_class` rows in the result (all of its old rows when it has fewer),
    topped up from that class's old rows by a second seeded draw. Why: a uniform draw of a few rows
    can miss a class altogether, and the model would then be fine-tuned toward forgetting it (and the
    run refused by the per-class minimum, by chance, for data that could train).
    """
    if not 0.0 <= replay_fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), not {replay_fraction!r}.")
    new = np.unique(np.asarray(new_indices, dtype=np.int64))
    old = np.setdiff1d(np.asarray(old_indices, dtype=np.int64), new)  # sorted, unique
    wanted = int(round(len(new) * replay_fraction / (1.0 - replay_fraction)))
    take = min(wanted, len(old))
    chosen = np.random.default_rng(seed).choice(old, size=take, replace=False) if take else old[:0]
    result = np.union1d(new, chosen)
    if labels is None or min_per_class <= 0 or not len(old):
        return result
    names = np.asarray(labels, dtype=object).astype(str)
    top_up = np.random.default_rng([seed, 1])  # its own stream: the uniform draw above stays as it was
    extra = []
    for name in sorted(set(names[old].tolist())):
        short = min_per_class - int(np.count_nonzero(names[result] == name))
        if short > 0:
            pool = np.setdiff1d(old[names[old] == name], result)
            extra.append(top_up.choice(pool, size=min(short, len(pool)), replace=False))
    return np.union1d(result, np.concatenate(extra)) if extra else result
