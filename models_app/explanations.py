"""The champion's per-feature explanation as the JSON the review card shows (and an auditor can reread).

The numbers come from models_app/ml/explain.py; this module only writes them
down, one JSON text per item, with the words the card shows ("pushes toward
malignant"), so what is stored is exactly what the reviewer was shown:

    {"method": "linear", "calibrated": true, "class": "malignant",
     "toward": "pushes toward malignant", "away": "pushes toward benign",
     "contributors": [["radius", 17.99, 1.2345, "toward"], …]}

Each contributor is [feature, the item's value, contribution, direction]:
arrays, not objects, because the record is written for every open item (a
million) and named keys doubled its size, and the UPDATE's time grows with it.
`contribution` is rounded to 4 decimals, in log-odds of `class`; `direction`
is "toward", "away" or "none" (rounds to 0). Contributors come largest
|contribution| first. Text is built per row from one format string (as the
probabilities are): no dict or json.dumps call per row, which at a million
items would cost more than the model. The sentence that says what the method
measures is not repeated in every row (a quarter of its size): `method` and
`calibrated` name it, and the card words it (annotations/templatetags/loupe_explanation.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from models_app.ml.baseline import FeatureSpec
from models_app.ml.explain import TOP_K, Explanation, ExplanationError, explain

logger = logging.getLogger(__name__)

_CONTRIBUTOR = '[%s, %s, %.4f, "%s"]'


def explanations_json(
    model: Any, frame: pd.DataFrame, specs: list[FeatureSpec], classes: list[str], best: np.ndarray, top_k: int = TOP_K
) -> list[str | None]:
    """One JSON text per row of `frame` explaining its predicted class `classes[best[row]]`.

    A model that cannot be explained (explain.ExplanationError) gives None for every row, logged: the
    prediction itself is still shown, and an explanation must never be made up.
    """
    try:
        explanation = explain(model, frame, classes, predicted=best, top_k=top_k)
    except ExplanationError:
        logger.warning("No explanation for this model's predictions.", exc_info=True)
        return [None] * len(frame)
    k = explanation.feature_index.shape[1]
    headers = np.asarray([_header(explanation, classes, c) for c in range(len(classes))], dtype=object)
    rounded = np.round(explanation.contribution, 4) + 0.0  # + 0.0: no "-0.0000"
    parts = np.empty((len(frame), 1 + 4 * k), dtype=object)
    parts[:, 0] = headers[explanation.class_index]
    parts[:, 1::4] = np.asarray([json.dumps(name) for name in explanation.features], dtype=object)[
        explanation.feature_index
    ]
    parts[:, 2::4] = _values_json(frame, specs, explanation.feature_index)
    parts[:, 3::4] = rounded
    parts[:, 4::4] = np.where(rounded > 0, "toward", np.where(rounded < 0, "away", "none")).astype(object)
    template = "%s" + ", ".join([_CONTRIBUTOR] * k) + "]}"
    return [template % tuple(row) for row in parts.tolist()]


def _header(explanation: Explanation, classes: list[str], c: int) -> str:
    """The JSON up to the contributors' list for rows predicted as `classes[c]`."""
    name = classes[c]
    others = [other for other in classes if other != name]
    away = f"pushes toward {others[0]}" if len(others) == 1 else f"pushes away from {name}"
    header = {
        "method": explanation.method,
        "calibrated": explanation.calibrated,
        "class": name,
        "toward": f"pushes toward {name}",
        "away": away,
    }
    return json.dumps(header)[:-1] + ', "contributors": ['


def _values_json(frame: pd.DataFrame, specs: list[FeatureSpec], index: np.ndarray) -> np.ndarray:
    """(rows, k) the item's value of each listed feature, as objects whose str() is their JSON text.

    Loops over features (a few dozen), never rows: numbers stay Python floats (str is
    repr, the shortest text that reads back the same; whole numbers of an integer
    feature become ints), so the row's format string writes them at C speed.
    """
    out = np.empty(index.shape, dtype=object)
    for j, spec in enumerate(specs):
        rows, slots = np.nonzero(index == j)
        if not len(rows):
            continue
        column = frame.iloc[:, j].to_numpy()[rows]
        if spec.dtype == "category":
            texts = [json.dumps(str(v)) if isinstance(v, str) or not pd.isna(v) else "null" for v in column]
            out[rows, slots] = texts
            continue
        numbers = column.astype(np.float64)
        missing = ~np.isfinite(numbers)
        if spec.dtype == "boolean":
            shown = np.where(numbers != 0, "true", "false").astype(object)
        elif spec.dtype == "integer" and np.all((numbers == np.round(numbers)) | missing):
            shown = np.where(missing, 0, numbers).astype(np.int64).astype(object)
        else:
            shown = numbers.astype(object)
        shown[missing] = "null"
        out[rows, slots] = shown
    return out
