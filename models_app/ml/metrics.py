"""Classification metrics on a labelled set: overall, per class, calibration."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(y_true: list[str], proba: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, brier_score_loss, f1_score

    if len(y_true) == 0:
        return {"n": 0}
    predicted = [class_names[i] for i in proba.argmax(axis=1)]
    truth = np.asarray(y_true)
    per_class = {}
    for name in class_names:
        mask = truth == name
        per_class[name] = {
            "support": int(mask.sum()),
            "recall": float((np.asarray(predicted)[mask] == name).mean()) if mask.any() else None,
            "f1": float(f1_score(truth, predicted, labels=[name], average="macro", zero_division=0)),
        }
    onehot = np.stack([(truth == name).astype(float) for name in class_names], axis=1)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "log_loss": _log_loss(truth, proba, class_names),
        # multi-class Brier: mean squared error of the probability vector
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "brier_positive": (float(brier_score_loss(onehot[:, 1], proba[:, 1])) if len(class_names) == 2 else None),
        "per_class": per_class,
    }


def _log_loss(truth: np.ndarray, proba: np.ndarray, class_names: list[str]) -> float:
    from sklearn.metrics import log_loss

    # scikit-learn reads probability columns in sorted label order.
    order = sorted(range(len(class_names)), key=lambda i: class_names[i])
    return float(log_loss(truth, np.clip(proba[:, order], 1e-12, 1), labels=[class_names[i] for i in order]))
