"""Can these labels train a model at all? Checked before any fitting, by every model family.

Refused (base.TrainingDataError, naming the class, its count and the minimum):
labels outside the schema, fewer than two classes with examples, and any class
that has examples but fewer than `min_per_class` of them. A class with one or
two examples is not "learned": it is memorised, and a calibration or a
per-class metric built on it says nothing; better to say so than to train.

Warned (returned, and copied into `FitInfo.warnings` by `fit`): a class in the
schema with no examples at all. The model can still rank the classes it has
seen; it gives the absent class probability 0, and a person reading the model
version should know that it can never predict it.

`MIN_PER_CLASS_FLOOR` is what `fit` itself enforces; the training run passes
the dataset policy's own (higher) minimum before calling `fit`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from models_app.ml.algorithms.base import ModelSpec, TrainingDataError

# Two examples: the least that lets a class appear on both sides of a stratified split.
MIN_PER_CLASS_FLOOR = 2


def training_data_check(labels: Sequence[str] | np.ndarray, spec: ModelSpec, min_per_class: int) -> list[str]:
    """Refuse labels that cannot train a model; return warnings (absent classes) for the fit's record."""
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be at least 1, got {min_per_class}")
    counts = Counter(str(label) for label in labels)
    unknown = sorted(set(counts) - set(spec.class_names))
    if unknown:
        raise TrainingDataError(
            f"Label(s) not in the schema: {', '.join(repr(u) for u in unknown)}; "
            f"the schema's classes are {', '.join(spec.class_names)}."
        )
    present = [name for name in spec.class_names if counts[name] > 0]
    if len(present) < 2:
        found = ", ".join(f"{name!r} ({counts[name]})" for name in present) or "none"
        raise TrainingDataError(f"Training needs examples of at least two classes; found {found}.")
    too_few = [name for name in present if counts[name] < min_per_class]
    if too_few:
        detail = "; ".join(f"class {name!r} has {counts[name]}" for name in too_few)
        raise TrainingDataError(
            f"Every class with examples needs at least {min_per_class} of them: {detail}. "
            "Label more examples of it, or merge it into another class in the schema."
        )
    return [
        f"Class {name!r} has no examples in the training data: the model gives it probability 0."
        for name in spec.class_names
        if counts[name] == 0
    ]
