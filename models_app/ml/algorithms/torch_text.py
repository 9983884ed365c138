"""TORCH_TEXT: a bag-of-embeddings text classifier (fastText's shape) over a vocabulary built from the snapshot.

Tokens are lower-cased word tokens (`\\w+`, so Unicode letters and digits); the vocabulary keeps
tokens seen at least `min_count` times in the training texts, the `max_vocabulary` most frequent
(ties by the token itself, so it does not depend on row order). A token outside the vocabulary is
dropped. The model is the mean of the kept tokens' embeddings (torch's EmbeddingBag) followed by
one linear layer to a logit per schema class; a text with no known token gets the bias alone.
The vocabulary, the classes seen and the temperature travel in the artifact's JSON header.

Explanation is occlusion per distinct token: a token's contribution is the predicted class's
log-odds minus the same with every occurrence of that token removed. Because the model is
linear after the mean, that is exact and needs no extra forward pass: with S the sum of the
text's per-token class scores (E·Wᵀ, one row per vocabulary token) over its L kept tokens, the
logits without a token seen c times are (S − c·score(token)) / (L − c) + b. So a whole batch is
explained with numpy over (row, distinct token) pairs, no loop over rows.

The text is the schema's one "text" feature; other features are ignored (and FitInfo says so).
Warm start reuses the champion's vocabulary and embedding size and starts from its weights.
"""

from __future__ import annotations

import re
from collections import Counter
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
from models_app.ml.algorithms.catalogue import TORCH_TEXT_HYPERPARAMETERS, TORCH_TEXT_LABEL
from models_app.ml.artifacts import ArtifactIntegrityError

NAME = "torch_text"
METHOD = "occlusion"
_TOKEN = re.compile(r"\w+")
_CHUNK = 65536  # texts per forward pass at prediction time

HYPERPARAMETERS = TORCH_TEXT_HYPERPARAMETERS


def tokenize(text: Any) -> list[str]:
    """Lower-cased word tokens; a missing text has none."""
    return _TOKEN.findall(text.lower()) if isinstance(text, str) else []


def _text_feature(frame: pd.DataFrame, spec: ModelSpec) -> str:
    text = [f.name for f in spec.features if f.dtype == "text"]
    if len(text) != 1:
        raise TrainingDataError(
            f"torch_text needs exactly one text feature; the schema has {len(text)} ({', '.join(text) or 'none'})."
        )
    if text[0] not in frame.columns:
        raise TrainingDataError(f"The frame has no column for the text feature {text[0]}.")
    return text[0]


def _vocabulary(documents: list[list[str]], min_count: int, max_size: int) -> list[str]:
    counts = Counter(token for tokens in documents for token in tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return kept[:max_size]


def _encode(documents: list[list[str]], vocabulary: list[str] | pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(flat token ids, per-text lengths); unknown tokens dropped. One hash lookup for all tokens, no loop per token."""
    lengths = np.fromiter((len(tokens) for tokens in documents), dtype=np.int64, count=len(documents))
    tokens = np.fromiter((t for d in documents for t in d), dtype=object, count=int(lengths.sum()))
    index = vocabulary if isinstance(vocabulary, pd.Index) else pd.Index(vocabulary)
    ids = index.get_indexer(tokens) if len(tokens) else np.zeros(0, dtype=np.int64)
    known = ids >= 0
    rows = np.repeat(np.arange(len(documents)), lengths)
    return ids[known].astype(np.int64), np.bincount(rows[known], minlength=len(documents)).astype(np.int64)


def _gather(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor):
    """The chosen texts' token ids as EmbeddingBag input (ids, offsets), without a loop over texts."""
    chosen_lengths = lengths[rows]
    offsets = torch.cumsum(chosen_lengths, 0) - chosen_lengths
    within = torch.arange(int(chosen_lengths.sum())) - torch.repeat_interleave(offsets, chosen_lengths)
    ids = flat[torch.repeat_interleave(starts[rows], chosen_lengths) + within]
    return ids, offsets


class _BagOfEmbeddings(nn.Module):
    def __init__(self, vocabulary_size: int, dim: int, n_classes: int) -> None:
        super().__init__()
        # Sparse gradients: a batch touches a few hundred of the vocabulary's rows (see train_epochs).
        self.embedding = nn.EmbeddingBag(vocabulary_size, dim, mode="mean", sparse=True)
        self.classify = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embedding(ids, offsets))


class FittedTorchText:
    def __init__(
        self,
        *,
        spec: ModelSpec,
        info: FitInfo,
        vocabulary: list[str],
        dim: int,
        module: _BagOfEmbeddings,
        present: np.ndarray,
        temperature: float,
        artifact_sha256: str | None = None,
    ) -> None:
        self.spec, self.info, self.vocabulary, self.dim = spec, info, vocabulary, dim
        self.module, self.present, self.temperature = module.eval(), present, temperature
        self.artifact_sha256 = artifact_sha256
        self._index = pd.Index(vocabulary)  # token -> id, hashed once

    def _encoded(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        column = _text_feature(frame, self.spec)
        return _encode([tokenize(t) for t in frame[column].tolist()], self._index)

    def _logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        ids, counts = torch.from_numpy(flat), torch.from_numpy(lengths)
        starts = torch.cumsum(counts, 0) - counts
        parts = []
        with torch.inference_mode(), common.one_thread():
            for s in range(0, len(lengths), _CHUNK):
                rows = torch.arange(s, min(s + _CHUNK, len(lengths)))
                parts.append(self.module(*_gather(ids, starts, counts, rows)))
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.spec.class_names)), np.float32)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return common.probabilities(self._logits(*self._encoded(frame)), self.present, self.temperature)

    def explain(self, frame: pd.DataFrame, *, top_k: int = 5) -> Explanation:
        """Per row the top-k distinct tokens by occlusion (see the module docstring); "" and NaN past the last."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        flat, lengths = self._encoded(frame)
        n = len(lengths)
        predicted = common.probabilities(self._logits(flat, lengths), self.present, self.temperature).argmax(axis=1)
        weight = self.module.classify.weight.detach().double().numpy()
        bias = self.module.classify.bias.detach().double().numpy()
        scores = self.module.embedding.weight.detach().double().numpy() @ weight.T  # (vocabulary, classes)
        rows = np.repeat(np.arange(n), lengths)
        totals = np.zeros((n, len(bias)))
        np.add.at(totals, rows, scores[flat])
        safe = np.maximum(lengths, 1)[:, None]
        full = np.where(lengths[:, None] > 0, totals / safe, 0.0) + bias
        # Distinct (row, token) pairs and how often the token occurs in the row.
        keys, counts = np.unique(rows * len(self.vocabulary) + flat, return_counts=True)
        pair_row, pair_token = keys // max(len(self.vocabulary), 1), keys % max(len(self.vocabulary), 1)
        remaining = (lengths[pair_row] - counts)[:, None]
        reduced = totals[pair_row] - counts[:, None] * scores[pair_token]
        without = np.where(remaining > 0, reduced / np.maximum(remaining, 1), 0.0) + bias
        cls = predicted[pair_row]
        value = common.log_odds(full[pair_row], self.present, self.temperature, cls) - common.log_odds(
            without, self.present, self.temperature, cls
        )
        # Per row, largest |value| first (ties: the more frequent vocabulary token), the first top_k kept.
        order = np.lexsort((pair_token, -np.abs(value), pair_row))
        first_of_row = np.searchsorted(pair_row[order], pair_row[order], side="left")
        rank = np.arange(len(order)) - first_of_row
        keep = order[rank < top_k]
        names = np.full((n, top_k), "", dtype=object)
        values = np.full((n, top_k), np.nan)
        vocabulary = np.asarray(self.vocabulary, dtype=object)
        names[pair_row[keep], rank[rank < top_k]] = vocabulary[pair_token[keep]]
        values[pair_row[keep], rank[rank < top_k]] = value[keep]
        return Explanation(method=METHOD, names=names, values=values)

    def to_bytes(self) -> bytes:
        header = {
            "algorithm": NAME,
            "spec": common.spec_json(self.spec),
            "vocabulary": self.vocabulary,
            "architecture": {"embedding_dim": self.dim},
            "present": [bool(p) for p in self.present],
            "temperature": self.temperature,
            "info": common.info_json(self.info),
        }
        return common.artifact_bytes(self.module.state_dict(), header)

    def save(self, path: Path) -> str:
        self.artifact_sha256 = common.artifact_write(self.to_bytes(), Path(path))
        return self.artifact_sha256


def _champion(warm_start: Any, spec: ModelSpec, dim: int) -> FittedTorchText:
    if not isinstance(warm_start, FittedTorchText):
        family = getattr(getattr(warm_start, "info", None), "algorithm", type(warm_start).__name__)
        raise common.WarmStartError(
            f"A torch_text model can only be warm-started from a torch_text champion, not {family}."
        )
    common.spec_check(common.spec_json(warm_start.spec), spec, "The champion", common.WarmStartError)
    if warm_start.dim != dim:
        raise common.WarmStartError(
            f"The champion's embeddings have {warm_start.dim} dimensions; the policy asks for {dim}. "
            "Fine-tuning keeps the champion's architecture: set embedding_dim to match or retrain from scratch."
        )
    return warm_start


class TorchText:
    name = NAME
    label = TORCH_TEXT_LABEL
    handles_text = True
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
    ) -> FittedTorchText:
        params = self.validate_params(params)
        column = _text_feature(frame, spec)
        y = common.encode_labels(labels, spec, len(frame))
        order = common.canonical_rows(frame[[column]], y)
        texts, y = frame[column].iloc[order].tolist(), y[order]
        champion = _champion(warm_start, spec, params["embedding_dim"]) if warm_start is not None else None
        info = FitInfo(algorithm=NAME, params=params, seed=seed, library_versions=common.library_versions())
        ignored = [f.name for f in spec.features if f.name != column]
        if ignored:
            info.warnings.append(f"torch_text reads only {column}; ignored: {', '.join(ignored)}.")
        documents = [tokenize(t) for t in texts]
        train, held, reason = common.calibration_split(y, seed)
        if champion:
            vocabulary = champion.vocabulary
        else:
            vocabulary = _vocabulary([documents[i] for i in train], params["min_count"], params["max_vocabulary"])
        if not vocabulary:
            raise TrainingDataError(f"No token occurs at least {params['min_count']} times in the training texts.")
        epochs = params["fine_tune_epochs"] if champion else params["epochs"]
        n_classes = len(spec.class_names)
        flat_train, lengths_train = _encode([documents[i] for i in train], vocabulary)
        with common.deterministic(seed):
            module = _BagOfEmbeddings(len(vocabulary), params["embedding_dim"], n_classes)
            if champion:
                module.load_state_dict(champion.module.state_dict())
                info.warm_started_from = common.champion_sha256(champion)
            ids, counts = torch.from_numpy(flat_train), torch.from_numpy(lengths_train)
            starts = torch.cumsum(counts, 0) - counts
            target = torch.from_numpy(y[train])
            loss = nn.CrossEntropyLoss(
                weight=common.class_weights(y[train], n_classes, params["class_weight_balanced"])
            )
            common.train_epochs(
                module,
                n_rows=len(train),
                batch_loss=lambda rows: loss(module(*_gather(ids, starts, counts, rows)), target[rows]),
                epochs=epochs,
                learning_rate=params["learning_rate"],
                weight_decay=params["weight_decay"],
                batch_size=params["batch_size"],
                seed=seed,
                progress=progress,
                sparse=(module.embedding.weight,),
            )
        info.epochs_run = epochs
        present = np.bincount(y[train], minlength=n_classes) > 0
        if champion:
            present |= champion.present
        info.warnings += common.absent_class_warnings(present, spec)
        fitted = FittedTorchText(
            spec=spec,
            info=info,
            vocabulary=vocabulary,
            dim=params["embedding_dim"],
            module=module,
            present=present,
            temperature=1.0,
        )
        held_logits = None
        if held is not None:
            held_flat, held_lengths = _encode([documents[i] for i in held], vocabulary)
            held_logits = np.where(present, fitted._logits(held_flat, held_lengths), -np.inf)
        fitted.temperature = common.calibrate(info, held_logits, y[held] if held is not None else None, reason)
        return fitted

    def load(self, path: Path, expected_sha256: str, *, spec: ModelSpec) -> FittedTorchText:
        tensors, header = common.artifact_read(Path(path), expected_sha256, NAME)
        common.spec_check(header["spec"], spec, f"Artifact {Path(path).name}", ArtifactIntegrityError)
        vocabulary = list(header["vocabulary"])
        dim = int(header["architecture"]["embedding_dim"])
        with torch.random.fork_rng(devices=[]):  # building the layers draws initial weights; keep the caller's RNG
            module = _BagOfEmbeddings(len(vocabulary), dim, len(spec.class_names))
        try:
            module.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise ArtifactIntegrityError(
                f"Artifact {Path(path).name} weights do not fit its vocabulary: {error}"
            ) from None
        return FittedTorchText(
            spec=spec,
            info=common.info_from_json(header["info"]),
            vocabulary=vocabulary,
            dim=dim,
            module=module,
            present=np.asarray(header["present"], dtype=bool),
            temperature=float(header["temperature"]),
            artifact_sha256=expected_sha256,
        )


TORCH_TEXT = TorchText()
