"""The model families a dataset's policy can choose from, by stable name (stored on each model version).

Each entry is imported only when asked for, so the web process that lists the
choices never imports torch (the torch modules import it inside themselves too).
"""

from __future__ import annotations

import importlib

from models_app.ml.algorithms.base import Algorithm

# name -> "module:attribute" of an object implementing base.Algorithm
REGISTRY: dict[str, str] = {
    "logistic_regression": "models_app.ml.algorithms.sklearn_models:LOGISTIC_REGRESSION",
    "hist_gradient_boosting": "models_app.ml.algorithms.sklearn_models:HIST_GRADIENT_BOOSTING",
    "tfidf_logistic_regression": "models_app.ml.algorithms.sklearn_models:TFIDF_LOGISTIC_REGRESSION",
    "torch_mlp": "models_app.ml.algorithms.torch_tabular:TORCH_MLP",
    "torch_text": "models_app.ml.algorithms.torch_text:TORCH_TEXT",
}

DEFAULT = "logistic_regression"


class UnknownAlgorithmError(ValueError):
    pass


def algorithm_get(name: str) -> Algorithm:
    try:
        module_name, attribute = REGISTRY[name].split(":")
    except KeyError:
        raise UnknownAlgorithmError(f"Unknown algorithm {name!r}; known: {', '.join(REGISTRY)}.") from None
    return getattr(importlib.import_module(module_name), attribute)
