"""What the two torch families share: determinism, the one-file safetensors artifact, the training loop,
temperature scaling, label encoding and the warm-start checks.

This module imports torch at import time; only torch_tabular and torch_text import it, and the
registry imports those only when a torch algorithm is asked for, so the web process never does.

The artifact is ONE safetensors file: the weights as tensors, and everything else (the format
version, algorithm, spec, preprocessing or vocabulary, architecture, fit info) as one JSON string
under the key "loupe" of the file's own metadata header. Loading reads the bytes once, checks
their sha256 first, and only then parses them (the header with `json`, the tensors with
safetensors): nothing is unpickled or executed, and the hash checked is the hash of what is
parsed (no window between check and read).

Determinism (issue 9, point 5): `deterministic(seed)` forks torch's RNG, seeds it, and turns on
`torch.use_deterministic_algorithms` for the fit only (restored afterwards, so a worker's other
work is untouched); the training loop shuffles with its own seeded generator over rows the caller
has already put in canonical order. On one CPU build, the same rows and seed give the same bits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models_app.ml.algorithms.base import (
    FitInfo,
    ModelSpec,
    ProgressCallback,
    TrainingDataError,
    canonical_order,
    row_content_hashes,
)
from models_app.ml.artifacts import ArtifactIntegrityError

FORMAT = "loupe-torch/1"
# Below this many training rows no calibration split is held out: 10% of fewer rows says little
# about a temperature and costs the model rows it needs.
MIN_ROWS_FOR_TEMPERATURE = 200
CALIBRATION_SHARE = 0.1


class WarmStartError(ValueError):
    """The champion cannot seed this fine-tune (another family, another schema or architecture); says which."""


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch, require deterministic kernels and train on one thread; everything is restored afterwards.

    One intra-op thread: the batches are small (hundreds of rows × tens of columns), where a second
    thread's synchronisation costs more than it saves, and on a shared 2-core machine it was
    catastrophic (an epoch of 100k rows took 31 s on two threads, 0.6 s on one); it also keeps the
    result independent of the machine's core count. Deterministic mode's NaN-filling of fresh
    tensors is turned off: our code never reads uninitialised memory, and the fill doubled an
    epoch's time.
    """
    import torch.utils.deterministic as torch_deterministic

    previous = torch.are_deterministic_algorithms_enabled()
    previous_fill = torch_deterministic.fill_uninitialized_memory
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch_deterministic.fill_uninitialized_memory = False
        try:
            yield
        finally:
            torch_deterministic.fill_uninitialized_memory = previous_fill
            torch.use_deterministic_algorithms(previous)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the duration (see `deterministic`); prediction and explanation too.

    Measured on the shared 2-core machine: explanation 30-40k rows/s on one thread, 5.5k on two;
    prediction 1.2M rows/s against 0.25M. It also makes the bits independent of the core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def library_versions() -> dict[str, str]:
    import safetensors

    return {"torch": torch.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}


def canonical_rows(frame: Any, labels: np.ndarray) -> np.ndarray:
    """Row positions in content-hash order: the fit never depends on the order rows were read in."""
    return canonical_order(row_content_hashes(frame, labels))


def encode_labels(labels: Any, spec: ModelSpec, n_rows: int) -> np.ndarray:
    """Label names → class indices in `spec.class_names` order; unknown labels and too few classes refused."""
    values = np.asarray(labels).astype(str)
    if values.shape != (n_rows,):
        raise TrainingDataError(f"There are {n_rows} rows but {values.size} labels.")
    position = {name: i for i, name in enumerate(spec.class_names)}
    unknown = sorted(set(np.unique(values)) - set(position))
    if unknown:
        raise TrainingDataError(f"Labels not in the schema: {', '.join(unknown)}.")
    y = np.fromiter((position[v] for v in values), dtype=np.int64, count=n_rows)
    if len(np.unique(y)) < 2:
        raise TrainingDataError(f"Training needs at least two label classes; found {len(np.unique(y))}.")
    return y


def absent_class_warnings(present: np.ndarray, spec: ModelSpec) -> list[str]:
    return [
        f"Class {name!r} has no training example: the model gives it probability 0."
        for name, seen in zip(spec.class_names, present, strict=True)
        if not seen
    ]


def class_weights(y: np.ndarray, n_classes: int, balanced: bool) -> torch.Tensor | None:
    """n / (classes present × count) per class, as scikit-learn's "balanced"; absent classes weigh 0."""
    if not balanced:
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def calibration_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(training positions, held-out positions or None, why): a seeded 10% held out for temperature scaling."""
    n = len(y)
    if n < MIN_ROWS_FOR_TEMPERATURE:
        return np.arange(n), None, f"not calibrated: {n} training rows, fewer than {MIN_ROWS_FOR_TEMPERATURE}"
    order = np.random.default_rng(seed).permutation(n)
    held = np.sort(order[: max(int(round(n * CALIBRATION_SHARE)), 20)])
    train = np.sort(order[len(held) :])
    return train, held, ""


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(temperature, log loss at T=1, log loss at T) minimising held-out log loss; T searched on a log scale.

    A golden-section search over log T in [-3, 3] (T from 0.05 to 20): deterministic, no optimiser
    state, and the log loss is unimodal in T for fixed logits in practice.
    """

    def loss(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    low, high = -3.0, 3.0
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    best = (low + high) / 2
    return float(np.exp(best)), loss(0.0), loss(best)


def calibrate(info: FitInfo, logits: np.ndarray | None, y_held: np.ndarray | None, reason: str) -> float:
    """Fit a temperature on held-out logits and keep it only when it lowers their log loss; record why."""
    if logits is None or y_held is None:
        info.calibration, info.calibration_reason = "none", reason
        return 1.0
    temperature, before, after = fit_temperature(logits, y_held)
    held = f"{len(y_held)} held-out rows"
    if after < before - 1e-6:
        info.calibration = "temperature"
        info.calibration_reason = f"T={temperature:.3f} on {held}: log loss {before:.4f} -> {after:.4f}"
        return temperature
    info.calibration = "none"
    info.calibration_reason = f"temperature did not lower log loss on {held} ({before:.4f})"
    return 1.0


def train_epochs(
    module: torch.nn.Module,
    *,
    n_rows: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    progress: ProgressCallback | None,
    sparse: tuple[torch.nn.Parameter, ...] = (),
) -> None:
    """AdamW over seeded shuffles of `range(n_rows)`; `batch_loss(positions)` gives one batch's mean loss.

    Parameters in `sparse` (embeddings with sparse gradients) get SparseAdam instead, without
    weight decay (it has none): a dense step touches every row of a 50k-token embedding for the
    few hundred tokens a batch holds, and made an epoch over 50k texts take 25 s instead of 2.
    `progress(fraction, "epoch i/N", i)` after each epoch; it may raise to cancel the fit.
    """
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in module.parameters() if id(p) not in sparse_ids]
    optimisers: list[torch.optim.Optimizer] = [torch.optim.AdamW(dense, lr=learning_rate, weight_decay=weight_decay)]
    if sparse:
        optimisers.append(torch.optim.SparseAdam(list(sparse), lr=learning_rate))
    shuffle = torch.Generator().manual_seed(seed)
    module.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n_rows, generator=shuffle)
        for start in range(0, n_rows, batch_size):
            for optimiser in optimisers:
                optimiser.zero_grad(set_to_none=True)
            loss = batch_loss(order[start : start + batch_size])
            loss.backward()
            for optimiser in optimisers:
                optimiser.step()
        if progress is not None:
            progress(epoch / epochs, f"epoch {epoch}/{epochs}", epoch)
    module.eval()


def probabilities(logits: np.ndarray, present: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of logits / T in float64; classes never seen in training get exactly 0."""
    z = np.where(present, logits.astype(np.float64) / temperature, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_odds(logits: np.ndarray, present: np.ndarray, temperature: float, classes: np.ndarray) -> np.ndarray:
    """log(p / (1 − p)) of `classes[row]` per row, exactly from the logits (no clipping near 0 or 1).

    `logits` is (..., rows, classes); the result is (..., rows).
    """
    z = np.where(present, logits.astype(np.float64) / temperature, -np.inf)
    picked = np.take_along_axis(z, classes[..., None], axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, classes[..., None], -np.inf, axis=-1)
    top = others.max(axis=-1)
    rest = top + np.log(np.exp(others - top[..., None]).sum(axis=-1))
    return picked - rest


def spec_json(spec: ModelSpec) -> dict[str, Any]:
    return {
        "features": [{"name": f.name, "dtype": f.dtype, "categories": list(f.categories)} for f in spec.features],
        "class_names": list(spec.class_names),
    }


def spec_check(stored: Mapping[str, Any], spec: ModelSpec, what: str, error: type[Exception]) -> None:
    """Raise `error` when a model's features (names, types) or label classes differ from `spec`'s; name which."""
    stored_features = [(f["name"], f["dtype"]) for f in stored["features"]]
    features = [(f.name, f.dtype) for f in spec.features]
    if stored_features != features:
        raise error(f"{what} was trained on features {stored_features}; this dataset has {features}.")
    if list(stored["class_names"]) != list(spec.class_names):
        raise error(
            f"{what} was trained for classes {list(stored['class_names'])}; this dataset has {list(spec.class_names)}."
        )


def artifact_bytes(tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> bytes:
    """The one-file artifact: weights plus the JSON header (sorted keys, so the same model gives the same bytes)."""
    from safetensors.torch import save

    payload = {"format": FORMAT, **header}
    contiguous = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    return save(contiguous, metadata={"loupe": json.dumps(payload, sort_keys=True, separators=(",", ":"))})


def artifact_write(data: bytes, path: Path) -> str:
    """Write atomically (temp file, fsync, rename; parent created) and return the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def artifact_read(path: Path, expected_sha256: str, algorithm: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, header) after the sha256 of the bytes matches; anything malformed is an ArtifactIntegrityError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"Artifact {Path(path).name} has sha256 {actual[:12]}…, the registry expects {expected_sha256[:12]}…; "
            "refusing to load it."
        )
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])["__metadata__"]["loupe"]
        payload = json.loads(header)
        tensors = load(data)
    except (ValueError, KeyError, TypeError, SafetensorError) as error:  # malformed header, tensors or keys
        raise ArtifactIntegrityError(f"Artifact {Path(path).name} is not a Loupe torch artifact: {error}") from None
    if payload.get("format") != FORMAT or payload.get("algorithm") != algorithm:
        raise ArtifactIntegrityError(
            f"Artifact {Path(path).name} holds {payload.get('algorithm')!r} ({payload.get('format')!r}); "
            f"expected {algorithm!r} ({FORMAT})."
        )
    return tensors, payload


def info_json(info: FitInfo) -> dict[str, Any]:
    return {
        "algorithm": info.algorithm,
        "params": info.params,
        "seed": info.seed,
        "calibration": info.calibration,
        "calibration_reason": info.calibration_reason,
        "library_versions": info.library_versions,
        "warnings": info.warnings,
        "epochs_run": info.epochs_run,
        "warm_started_from": info.warm_started_from,
    }


def info_from_json(data: Mapping[str, Any]) -> FitInfo:
    return FitInfo(**data)


def champion_sha256(champion: Any) -> str:
    """The champion's artifact hash: the one it was loaded or saved under, else the hash of its bytes."""
    return champion.artifact_sha256 or hashlib.sha256(champion.to_bytes()).hexdigest()
