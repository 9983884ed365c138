"""Model artifacts on disk: skops format (allow-listed types, never pickle), sha256-checked.

Only the system writes artifacts; every load first checks the file's sha256
against the registry, then loads with an explicit allow-list of types, so a
swapped or tampered file is refused rather than executed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

# The scikit-learn types skops does not trust by default but our pipeline uses.
TRUSTED_TYPES = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
]


class ArtifactIntegrityError(RuntimeError):
    """The artifact on disk does not match the hash recorded for it."""


def save_model(model: Any, path: Path) -> str:
    """Write atomically and return the file's sha256."""
    import skops.io as sio

    data = sio.dumps(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def load_model(path: Path, expected_sha256: str) -> Any:
    import skops.io as sio

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
