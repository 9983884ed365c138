"""Model artifacts on disk: skops format (allow-listed types, never pickle), sha256-checked.

Only the system writes artifacts; every load first checks the file's sha256
against the registry, then loads with an explicit allow-list of types, so a
swapped or tampered file is refused rather than executed.

The bytes are canonical (`skops_canonical`): skops names each object by its
memory address (`id()`) and stamps every zip entry with the current time, so
the same model saved twice gave two hashes. We renumber the objects in the
order the schema lists them and write the zip again with a fixed timestamp:
the same model (same data, seed and library versions) gives the same sha256.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import io
import json
import os
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

# The scikit-learn types skops does not trust by default but our pipeline uses.
TRUSTED_TYPES = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # models_app/ml/algorithms/sklearn_models.py: encoders' dtype parameter, histogram gradient boosting's trees
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # ...whose internal categorical preprocessor holds partial(check_array, ...): skops audits the partial's
    # function separately, so trusting partial admits only the functions listed here.
    "functools.partial",
    "sklearn.utils.validation.check_array",
]
# The zip timestamp of every entry (zip cannot say 1970; 1980-01-01 is its epoch).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SKOPS_IMPORT = threading.Lock()


class ArtifactIntegrityError(RuntimeError):
    """The artifact on disk does not match the hash recorded for it."""


class _NoTorch(importlib.abc.MetaPathFinder):
    """Makes `import torch` fail (ModuleNotFoundError) while it is first on sys.meta_path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == "torch" or fullname.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (not while skops.io is imported)", name=fullname)
        return None


def _skops_io() -> Any:
    """skops.io, imported without importing torch when torch is not loaded yet.

    Importing skops.io lists scikit-learn's estimators (sklearn.utils.all_estimators), which walks
    every scikit-learn package, and walking a package imports it: one of them,
    sklearn.externals.array_api_compat.torch, imports torch. That cost a web process 3.8 s and
    195 MB the first time it loaded a scikit-learn model (a promotion page evaluates its gates), for
    nothing: no estimator lives there. While skops.io is imported, a finder ahead of the others
    refuses torch, so the walk skips that package as it skips any that fails to import
    (pkgutil.walk_packages ignores ImportError): 0.5 s and 15 MB, the same 208 trusted estimator types.
    Not by putting None in sys.modules["torch"]: libraries that look there to ask "is torch loaded?"
    (scipy's array API helpers, run while scipy.stats is first imported) then fail on None.
    Under a lock, and only while torch is not loaded; a process that has torch already loses nothing.
    Should a later library version fail to import without torch, the import is simply done again with it.
    """
    with _SKOPS_IMPORT:
        if "skops.io" in sys.modules or "torch" in sys.modules:
            import skops.io

            return skops.io
        blocker = _NoTorch()
        sys.meta_path.insert(0, blocker)
        try:
            import skops.io
        except Exception:  # a library that cannot do without torch while importing: do it the slow way
            sys.meta_path.remove(blocker)
            import skops.io
        finally:
            if blocker in sys.meta_path:
                sys.meta_path.remove(blocker)
        return skops.io


def save_model(model: Any, path: Path) -> str:
    """Write atomically and return the file's sha256."""
    sio = _skops_io()

    data = skops_canonical(sio.dumps(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def load_model(path: Path, expected_sha256: str) -> Any:
    sio = _skops_io()

    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"Artifact {path.name} has sha256 {actual[:12]}…, the registry expects {expected_sha256[:12]}…; "
            "refusing to load it."
        )
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ArtifactIntegrityError(f"Artifact {path.name} contains types outside the allow-list: {sorted(untrusted)}")
    return sio.loads(data, trusted=TRUSTED_TYPES)


def skops_canonical(data: bytes) -> bytes:
    """The same skops file with object ids renumbered in schema order and fixed zip timestamps (see module doc)."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        members = {name: source.read(name) for name in source.namelist() if name != "schema.json"}
    renumbered: dict[int, int] = {}

    def new_id(old: int) -> int:
        return renumbered.setdefault(old, len(renumbered) + 1)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = new_id(value)
                elif key == "file" and isinstance(value, str) and value in members:
                    # arrays are named by their object's id, bytes by a random uuid: both renumbered
                    stem, suffix = value.split(".", 1)
                    number = new_id(int(stem)) if stem.isdigit() else f"bytes-{len(files) + 1}"
                    out[key] = f"{number}.{suffix}"
                    files[out[key]] = members[value]
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    files: dict[str, bytes] = {}
    canonical = walk(schema)
    if len(files) != len(members):
        raise ArtifactIntegrityError(
            f"skops wrote {len(members)} data files but its schema names {len(files)}; cannot canonicalise"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(files):
            target.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), files[name])
        target.writestr(zipfile.ZipInfo("schema.json", date_time=_ZIP_TIME), json.dumps(canonical, indent=2))
    return buffer.getvalue()
