"""Saving and loading a scikit-learn artifact does not import torch (models_app/ml/artifacts.py::_skops_io).

skops.io lists scikit-learn's estimators when it is imported, and that walk imported torch through
sklearn.externals.array_api_compat.torch: 3.8 s and 195 MB in a web process that only evaluated a
promotion's gates. Each case runs in a fresh interpreter, since this one has long imported both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

ROUND_TRIP = """
import sys, tempfile
from pathlib import Path
import numpy as np
from sklearn.linear_model import LogisticRegression
{before}
from models_app.ml.artifacts import load_model, save_model
x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
model = LogisticRegression().fit(x, y)
path = Path(tempfile.mkdtemp()) / "model.skops"
loaded = load_model(path, save_model(model, path))
assert (loaded.predict_proba(x) == model.predict_proba(x)).all()
print("torch" in sys.modules, sys.modules.get("torch", "absent") is None)
import torch  # the block is lifted: a torch model can still be loaded afterwards
print(torch.__name__)
"""


def _run(before: str = "") -> list[str]:
    code = ROUND_TRIP.format(before=before)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return result.stdout.split()


def test_a_scikit_learn_round_trip_leaves_torch_unloaded_and_importable():
    assert _run() == ["False", "False", "torch"]


def test_a_process_that_already_has_torch_loads_just_the_same():
    assert _run(before="import torch") == ["True", "False", "torch"]
