"""TORCH_MLP: a multilayer perceptron for tabular data (numbers, yes/no, categories), on CPU, deterministic.

Inputs are prepared the way the scikit-learn baseline prepares them, so explanations read alike:
numbers standardised by the training mean and sd (a missing number becomes the mean, i.e. 0),
categories one-hot over the schema's categories (or, when the schema lists none, the sorted
values seen in training; an unseen or missing category is all zeros). The preparation's
statistics travel inside the artifact, so a loaded model prepares rows exactly as at fit time.

The network is Linear → ReLU → Dropout per hidden layer, then a Linear to one logit per schema
class; AdamW on cross-entropy (optionally class-balanced). When there are enough rows, 10% are
held out and a temperature fitted on them (kept only if it lowers their log loss).

Explanation is the replacement method of models_app/ml/explain.py against the training means:
a feature's contribution is the predicted class's log-odds minus the same with that feature at
its baseline (a number at its mean, a category unknown). In prepared space the baseline is a
zero column (block), so only the first layer's pre-activation changes: it is computed once per
row, and each feature's replacement subtracts that feature's own term (a rank-1 or one-hot
update) before the rest of the network runs. Log-odds come from the logits exactly, not clipped.

Warm start (issue 9, point 4): `fit(..., warm_start=champion)` reuses the champion's preparation
and architecture, starts from its weights and runs `fine_tune_epochs`; the rows to fine-tune on
(new gold labels plus a replay sample, see replay.py) are the caller's choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from models_app.ml.algorithms import torch_common as common
from models_app.ml.algorithms.base import (
    Explanation,
    FitInfo,
    ModelSpec,
    ProgressCallback,
    TrainingDataError,
    params_validate,
)
from models_app.ml.algorithms.catalogue import TORCH_MLP_HYPERPARAMETERS, TORCH_MLP_LABEL
from models_app.ml.artifacts import ArtifactIntegrityError
from models_app.ml.explain import REPLACEMENT, top_contributors

NAME = "torch_mlp"
_CHUNK = 65536  # rows per forward pass at prediction time (bounded memory at 1M rows)
_EXPLAIN_CHUNK = 16384  # rows × (features + 1) per explanation pass: small enough to stay in cache

HYPERPARAMETERS = TORCH_MLP_HYPERPARAMETERS


class _MLP(nn.Module):
    def __init__(self, width: int, hidden: list[int], dropout: float, n_classes: int) -> None:
        super().__init__()
        self.first = nn.Linear(width, hidden[0])
        # In-place ReLU: nothing else reads a Linear's output, and explanation passes are memory-bound.
        rest: list[nn.Module] = [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        for a, b in zip(hidden, hidden[1:], strict=False):
            rest += [nn.Linear(a, b), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        rest.append(nn.Linear(hidden[-1], n_classes))
        self.rest = nn.Sequential(*rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(x))


def _features_check(frame: pd.DataFrame, spec: ModelSpec) -> None:
    text = [f.name for f in spec.features if f.dtype == "text"]
    if text:
        raise TrainingDataError(f"torch_mlp takes numbers and categories; {', '.join(text)} is text (use torch_text).")
    missing = [f.name for f in spec.features if f.name not in frame.columns]
    if missing:
        raise TrainingDataError(f"The frame has no column for feature(s) {', '.join(missing)}.")


def _as_text(series: pd.Series) -> pd.Series:
    return series.astype(object).map(str, na_action="ignore")


def _preparation_fit(frame: pd.DataFrame, spec: ModelSpec) -> list[dict[str, Any]]:
    """Per feature in schema order: {"name", "mean", "sd"} for a number, {"name", "categories"} for a category."""
    out: list[dict[str, Any]] = []
    for f in spec.features:
        if f.dtype == "category":
            categories = list(f.categories) or sorted(_as_text(frame[f.name]).dropna().unique().tolist())
            out.append({"name": f.name, "categories": categories})
        else:
            values = pd.to_numeric(frame[f.name], errors="coerce").to_numpy(dtype=np.float64)
            seen = values[~np.isnan(values)]
            mean = float(seen.mean()) if seen.size else 0.0
            sd = float(seen.std()) if seen.size else 1.0
            out.append({"name": f.name, "mean": mean, "sd": sd if sd > 0 else 1.0})
    return out


def _blocks(preparation: list[dict[str, Any]]) -> list[slice]:
    """Each feature's columns in the prepared matrix."""
    out, start = [], 0
    for p in preparation:
        width = len(p["categories"]) if "categories" in p else 1
        out.append(slice(start, start + width))
        start += width
    return out


def _prepare(preparation: list[dict[str, Any]], frame: pd.DataFrame) -> np.ndarray:
    """(rows, prepared columns) float32: standardised numbers (missing → 0, the mean), one-hot categories."""
    blocks = _blocks(preparation)
    out = np.zeros((len(frame), blocks[-1].stop if blocks else 0), dtype=np.float32)
    for p, block in zip(preparation, blocks, strict=True):
        if "categories" in p:
            codes = pd.Categorical(_as_text(frame[p["name"]]), categories=p["categories"]).codes
            known = codes >= 0
            out[np.flatnonzero(known), block.start + codes[known]] = 1.0
        else:
            values = pd.to_numeric(frame[p["name"]], errors="coerce").to_numpy(dtype=np.float64)
            out[:, block.start] = np.nan_to_num((values - p["mean"]) / p["sd"], nan=0.0)
    return out


class FittedTorchMLP:
    """A trained MLP with its preparation, the classes it saw, and its temperature."""

    def __init__(
        self,
        *,
        spec: ModelSpec,
        info: FitInfo,
        preparation: list[dict[str, Any]],
        hidden: list[int],
        dropout: float,
        module: _MLP,
        present: np.ndarray,
        temperature: float,
        artifact_sha256: str | None = None,
    ) -> None:
        self.spec, self.info = spec, info
        self.preparation, self.hidden, self.dropout = preparation, hidden, dropout
        self.module, self.present, self.temperature = module.eval(), present, temperature
        self.artifact_sha256 = artifact_sha256

    def _logits(self, prepared: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), common.one_thread():
            parts = [self.module(torch.from_numpy(prepared[s : s + _CHUNK])) for s in range(0, len(prepared), _CHUNK)]
            return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.spec.class_names)), np.float32)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        _features_check(frame, self.spec)
        return common.probabilities(self._logits(_prepare(self.preparation, frame)), self.present, self.temperature)

    def explain(self, frame: pd.DataFrame, *, top_k: int = 5) -> Explanation:
        """Top-k features per row by replacement with the training mean (see the module docstring)."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        _features_check(frame, self.spec)
        prepared = _prepare(self.preparation, frame)
        blocks = _blocks(self.preparation)
        names = np.asarray([p["name"] for p in self.preparation], dtype=object)
        contributions = np.empty((len(frame), len(blocks)))
        weight, bias = self.module.first.weight.detach(), self.module.first.bias.detach()
        step = max(1, _EXPLAIN_CHUNK // (len(blocks) + 1))
        with torch.inference_mode(), common.one_thread():
            for s in range(0, len(prepared), step):
                x = torch.from_numpy(prepared[s : s + step])
                hidden = x @ weight.T + bias  # (rows, units): the first layer, once
                # Each feature's own term in it; subtracting it is the feature at its baseline (0 in prepared space).
                own = torch.stack([torch.zeros_like(hidden)] + [x[:, b] @ weight[:, b].T for b in blocks])
                variants = hidden[None] - own  # (1 + features, rows, units): the row as is, then each replacement
                logits = self.module.rest(variants.reshape(-1, hidden.shape[1])).reshape(len(variants), len(x), -1)
                logits = logits.numpy()
                predicted = common.probabilities(logits[0], self.present, self.temperature).argmax(axis=1)
                classes = np.broadcast_to(predicted, logits.shape[:2])
                odds = common.log_odds(logits, self.present, self.temperature, classes)
                contributions[s : s + len(x)] = (odds[0] - odds[1:]).T
        index, values = top_contributors(contributions, top_k)
        return Explanation(method=REPLACEMENT, names=names[index], values=values)

    def to_bytes(self) -> bytes:
        header = {
            "algorithm": NAME,
            "spec": common.spec_json(self.spec),
            "preparation": self.preparation,
            "architecture": {"hidden": self.hidden, "dropout": self.dropout},
            "present": [bool(p) for p in self.present],
            "temperature": self.temperature,
            "info": common.info_json(self.info),
        }
        return common.artifact_bytes(self.module.state_dict(), header)

    def save(self, path: Path) -> str:
        self.artifact_sha256 = common.artifact_write(self.to_bytes(), Path(path))
        return self.artifact_sha256


def _champion(warm_start: Any, spec: ModelSpec, hidden: list[int]) -> FittedTorchMLP:
    if not isinstance(warm_start, FittedTorchMLP):
        family = getattr(getattr(warm_start, "info", None), "algorithm", type(warm_start).__name__)
        raise common.WarmStartError(f"A torch_mlp can only be warm-started from a torch_mlp champion, not {family}.")
    common.spec_check(common.spec_json(warm_start.spec), spec, "The champion", common.WarmStartError)
    if warm_start.hidden != hidden:
        raise common.WarmStartError(
            f"The champion has hidden sizes {warm_start.hidden}; the policy asks for {hidden}. "
            "Fine-tuning keeps the champion's architecture: set hidden_sizes to match or retrain from scratch."
        )
    return warm_start


class TorchMLP:
    name = NAME
    label = TORCH_MLP_LABEL
    handles_text = False
    hyperparameters = HYPERPARAMETERS

    def validate_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return params_validate(HYPERPARAMETERS, raw)

    def fit(
        self,
        frame: pd.DataFrame,
        labels: np.ndarray,
        *,
        spec: ModelSpec,
        params: Mapping[str, Any],
        seed: int,
        progress: ProgressCallback | None = None,
        warm_start: Any = None,
    ) -> FittedTorchMLP:
        params = self.validate_params(params)
        _features_check(frame, spec)
        y = common.encode_labels(labels, spec, len(frame))
        order = common.canonical_rows(frame[[f.name for f in spec.features]], y)
        frame, y = frame.iloc[order].reset_index(drop=True), y[order]
        hidden = [int(h) for h in params["hidden_sizes"].split(",")]
        champion = _champion(warm_start, spec, hidden) if warm_start is not None else None
        info = FitInfo(algorithm=NAME, params=params, seed=seed, library_versions=common.library_versions())
        preparation = champion.preparation if champion else _preparation_fit(frame, spec)
        prepared = _prepare(preparation, frame)
        train, held, reason = common.calibration_split(y, seed)
        epochs = params["fine_tune_epochs"] if champion else params["epochs"]
        n_classes = len(spec.class_names)
        with common.deterministic(seed):
            module = _MLP(prepared.shape[1], hidden, params["dropout"], n_classes)
            if champion:
                module.load_state_dict(champion.module.state_dict())
                info.warm_started_from = common.champion_sha256(champion)
            x, target = torch.from_numpy(prepared[train]), torch.from_numpy(y[train])
            loss = nn.CrossEntropyLoss(
                weight=common.class_weights(y[train], n_classes, params["class_weight_balanced"])
            )
            common.train_epochs(
                module,
                n_rows=len(train),
                batch_loss=lambda rows: loss(module(x[rows]), target[rows]),
                epochs=epochs,
                learning_rate=params["learning_rate"],
                weight_decay=params["weight_decay"],
                batch_size=params["batch_size"],
                seed=seed,
                progress=progress,
            )
        info.epochs_run = epochs
        present = np.bincount(y[train], minlength=n_classes) > 0
        if champion:
            present |= champion.present
        info.warnings += common.absent_class_warnings(present, spec)
        fitted = FittedTorchMLP(
            spec=spec,
            info=info,
            preparation=preparation,
            hidden=hidden,
            dropout=params["dropout"],
            module=module,
            present=present,
            temperature=1.0,
        )
        held_logits = np.where(present, fitted._logits(prepared[held]), -np.inf) if held is not None else None
        fitted.temperature = common.calibrate(info, held_logits, y[held] if held is not None else None, reason)
        return fitted

    def load(self, path: Path, expected_sha256: str, *, spec: ModelSpec) -> FittedTorchMLP:
        tensors, header = common.artifact_read(Path(path), expected_sha256, NAME)
        common.spec_check(header["spec"], spec, f"Artifact {Path(path).name}", ArtifactIntegrityError)
        architecture = header["architecture"]
        preparation = header["preparation"]
        with torch.random.fork_rng(devices=[]):  # building the layers draws initial weights; keep the caller's RNG
            module = _MLP(
                _blocks(preparation)[-1].stop, architecture["hidden"], architecture["dropout"], len(spec.class_names)
            )
        try:
            module.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise ArtifactIntegrityError(
                f"Artifact {Path(path).name} weights do not fit its architecture: {error}"
            ) from None
        return FittedTorchMLP(
            spec=spec,
            info=common.info_from_json(header["info"]),
            preparation=preparation,
            hidden=list(architecture["hidden"]),
            dropout=float(architecture["dropout"]),
            module=module,
            present=np.asarray(header["present"], dtype=bool),
            temperature=float(header["temperature"]),
            artifact_sha256=expected_sha256,
        )


TORCH_MLP = TorchMLP()
