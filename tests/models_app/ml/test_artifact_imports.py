"""Saving and loading a scikit-learn artifact does not import torch (models_app/ml/artifacts.py::_skops_io).

skops.io lists scikit-learn's estimators when it is imported, and that walk imported torch through
sklearn.externals.array_api_compat.torch: 3.8 s and 195 MB in a web process that only evaluated a
promotion's gates. Each case runs in fresh interpreters, since this one has long imported both, and
the load runs in one that has imported nothing else first, as a worker's first prediction does: a
first version of the block (None in sys.modules["torch"]) passed a round trip in one interpreter but
failed there, inside scipy.stats' first import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SAVE = """
import sys
from pathlib import Path
import numpy as np
from sklearn.linear_model import LogisticRegression
{before}
from models_app.ml.artifacts import save_model
x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
print(save_model(LogisticRegression().fit(x, y), Path(sys.argv[1])), "torch" in sys.modules)
"""

LOAD = """
import sys
from pathlib import Path
{before}
from models_app.ml.artifacts import load_model
model = load_model(Path(sys.argv[1]), sys.argv[2])
print(model.predict([[0.0], [3.0]]).tolist() == [0, 1], "torch" in sys.modules)
import torch  # not blocked any more: a torch model can still be loaded afterwards
print(torch.__name__)
"""


def _python(code: str, *args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_a_scikit_learn_model_saved_and_loaded_in_fresh_processes_leaves_torch_unloaded_and_importable(
    tmp_path,
):
    path = str(tmp_path / "model.skops")
    sha256, torch_loaded = _python(SAVE.format(before=""), path)
    assert torch_loaded == "False"
    assert _python(LOAD.format(before=""), path, sha256) == ["True", "False", "torch"]


def test_a_process_that_already_has_torch_saves_and_loads_just_the_same(tmp_path):
    path = str(tmp_path / "model.skops")
    sha256, _ = _python(SAVE.format(before="import torch"), path)
    assert _python(LOAD.format(before="import torch"), path, sha256) == ["True", "True", "torch"]


def test_should_skops_fail_to_import_without_torch_it_is_imported_again_with_it(tmp_path):
    path = str(tmp_path / "model.skops")
    sha256, _ = _python(SAVE.format(before=""), path)
    # The first listing of estimators fails, as a library that needed torch at import time would.
    flaky = (
        "import sklearn.utils\n"
        "listing = sklearn.utils.all_estimators\n"
        "failures = []\n"
        "def all_estimators(*args, **kwargs):\n"
        "    if not failures:\n"
        "        failures.append(1)\n"
        "        raise RuntimeError('needed torch')\n"
        "    return listing(*args, **kwargs)\n"
        "sklearn.utils.all_estimators = all_estimators"
    )
    assert _python(LOAD.format(before=flaky), path, sha256) == ["True", "True", "torch"]
