"""models_app/ml is plain Python: arrays in, metrics out, artifacts hash-checked."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from models_app.ml import baseline
from models_app.ml.artifacts import ArtifactIntegrityError, load_model, save_model
from models_app.ml.metrics import classification_metrics

SPECS = [baseline.FeatureSpec("x", "float"), baseline.FeatureSpec("colour", "category", ("red", "blue"))]
CLASSES = ["no", "yes"]


def _data(n: int = 40):  # type: ignore[no-untyped-def]
    rows = [{"x": float(i % 10), "colour": "red" if i % 3 else "blue"} for i in range(n)]
    labels = ["yes" if row["x"] >= 5 else "no" for row in rows]
    return baseline.frame_from_rows(rows, SPECS), labels


def test_ml_package_imports_no_django():
    for path in Path(baseline.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(name.startswith("django") for name in names), f"{path.name} imports Django"


def test_baseline_learns_a_separable_rule_with_calibrated_probabilities():
    frame, labels = _data()
    model = baseline.train(frame, labels, SPECS, CLASSES)
    proba = baseline.predict_proba(model, frame, CLASSES)
    assert proba.shape == (40, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    metrics = classification_metrics(labels, proba, CLASSES)
    assert metrics["accuracy"] >= 0.9
    assert set(metrics["per_class"]) == {"no", "yes"}


def test_training_with_a_single_class_is_refused_with_a_clear_message():
    frame, _ = _data(10)
    with pytest.raises(baseline.TrainingDataError, match="at least two classes"):
        baseline.train(frame, ["yes"] * 10, SPECS, CLASSES)


def test_artifact_round_trips_and_a_changed_byte_is_refused(tmp_path):
    frame, labels = _data()
    model = baseline.train(frame, labels, SPECS, CLASSES)
    path = tmp_path / "model.skops"
    sha = save_model(model, path)
    loaded = load_model(path, sha)
    assert np.allclose(loaded.predict_proba(frame), model.predict_proba(frame))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        load_model(path, sha)


def test_a_pickle_is_never_loaded_even_with_a_matching_hash(tmp_path):
    import hashlib
    import pickle

    path = tmp_path / "evil.skops"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(Exception):  # noqa: B017 - skops refuses non-skops bytes one way or another
        load_model(path, hashlib.sha256(path.read_bytes()).hexdigest())
