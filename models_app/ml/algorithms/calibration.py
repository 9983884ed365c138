"""Calibration that helps, or none: chosen by cross-validated log loss on the training rows.

Why: the queue ranks items by the model's probabilities and a reviewer reads
"92 %" as a promise. The first model always wrapped its regression in a sigmoid
calibration; on the demo's 24 seed rows that made the holdout's probabilities
worse (ECE 0.218 vs 0.049 uncalibrated). Here calibration is a choice, made on
evidence, and recorded with its reason.

How (the caller supplies out-of-fold logits: each row scored by a model fitted
on the other folds of a stratified K-fold split):

1. Too small to judge → "none". Below `MIN_ROWS` rows, or a class with fewer
   than `MIN_PER_CLASS` examples, each held-out fold holds fewer than four
   examples of some class, and the standard error of a log-loss difference
   (≈ 0.3/√n for typical per-row differences) is as large as the gains
   calibration brings (a few hundredths): any "improvement" would be noise.
2. Otherwise each candidate map is cross-fitted on the out-of-fold logits (fit
   on the other folds' rows, scored on this fold's) and compared, row by row,
   with the uncalibrated probabilities. Candidates: temperature (one scalar on
   the logits; keeps the ranking), sigmoid (Platt, per class one-vs-rest on the
   log-odds, then normalised), isotonic (per class, a step function: only from
   `ISOTONIC_MIN_ROWS` rows and `ISOTONIC_MIN_PER_CLASS` per class, the size
   below which scikit-learn's guide warns that it overfits).
3. The best candidate is applied only if it lowers the mean CV log loss by more
   than one standard error of the paired difference; otherwise "none".
4. The chosen map is fitted on all out-of-fold logits and applied to the logits
   of the model fitted on all rows (scikit-learn's `ensemble=False` shape).

A small optimism remains: the rows a map is fitted on were scored by models
that saw the held-out fold's labels. It favours no candidate over another.

Everything here is numpy arrays (skops-safe state, deterministic fits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NONE = "none"
TEMPERATURE = "temperature"
SIGMOID = "sigmoid"
ISOTONIC = "isotonic"

MIN_ROWS = 200
MIN_PER_CLASS = 20
ISOTONIC_MIN_ROWS = 1000
ISOTONIC_MIN_PER_CLASS = 100
# Past this many rows three folds estimate the log loss well enough and save two model fits.
MANY_ROWS = 20_000
# Isotonic's end steps rest on a handful of examples; a hard 0 or 1 would claim a certainty no
# finite sample supports, and one surprise would cost infinite log loss.
ISOTONIC_FLOOR = 1e-3
_EPS = 1e-15


@dataclass(frozen=True)
class Calibrator:
    """A fitted map from a model's logits (n, K) to probabilities (n, K). State is plain arrays (skops-safe)."""

    method: str = NONE
    temperature: float = 1.0
    slopes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercepts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps_x: tuple[np.ndarray, ...] = ()
    steps_y: tuple[np.ndarray, ...] = ()

    def apply(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        if self.method == NONE:
            return softmax(logits)
        if self.method == TEMPERATURE:
            return softmax(logits / self.temperature)
        odds = log_odds(logits)
        columns = _fitted_columns(logits.shape[1])
        if self.method == SIGMOID:
            fitted = [_expit(self.slopes[i] * odds[:, k] + self.intercepts[i]) for i, k in enumerate(columns)]
        elif self.method == ISOTONIC:
            fitted = [
                np.clip(np.interp(odds[:, k], self.steps_x[i], self.steps_y[i]), ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR)
                for i, k in enumerate(columns)
            ]
        else:
            raise ValueError(f"Unknown calibration method {self.method!r}")
        if logits.shape[1] == 2:  # binary: the one fitted class's complement, exactly as Platt's method
            return np.column_stack([1 - fitted[0], fitted[0]])
        stacked = np.column_stack(fitted)
        return stacked / stacked.sum(axis=1, keepdims=True)

    def state(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "temperature": float(self.temperature),
            "slopes": self.slopes,
            "intercepts": self.intercepts,
            "steps_x": list(self.steps_x),
            "steps_y": list(self.steps_y),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Calibrator:
        return cls(
            method=str(state["method"]),
            temperature=float(state["temperature"]),
            slopes=np.asarray(state["slopes"], dtype=np.float64),
            intercepts=np.asarray(state["intercepts"], dtype=np.float64),
            steps_x=tuple(np.asarray(x, dtype=np.float64) for x in state["steps_x"]),
            steps_y=tuple(np.asarray(y, dtype=np.float64) for y in state["steps_y"]),
        )


@dataclass(frozen=True)
class CalibrationChoice:
    calibrator: Calibrator
    reason: str
    cv_log_loss: dict[str, float]  # method -> mean cross-validated log loss (empty when skipped)


def calibration_skip_reason(counts: Mapping[str, int]) -> str | None:
    """Why the data are too small to judge a calibration (None when they are not). `counts`: class -> examples."""
    n = sum(counts.values())
    smallest = min(counts, key=lambda name: counts[name])
    if n < MIN_ROWS or counts[smallest] < MIN_PER_CLASS:
        return (
            f"none: {n} rows, the smallest class ({smallest!r}) has {counts[smallest]}; a calibration is chosen "
            f"by cross-validated log loss only from {MIN_ROWS} rows and {MIN_PER_CLASS} per class (below that a "
            "held-out fold has too few examples of a class to tell a better map from noise)."
        )
    return None


def calibration_folds(n_rows: int) -> int:
    return 3 if n_rows >= MANY_ROWS else 5


def calibration_candidates(counts: Mapping[str, int]) -> tuple[str, ...]:
    """The maps worth trying for these class counts (isotonic only with enough of every class)."""
    n, smallest = sum(counts.values()), min(counts.values())
    if n >= ISOTONIC_MIN_ROWS and smallest >= ISOTONIC_MIN_PER_CLASS:
        return (TEMPERATURE, SIGMOID, ISOTONIC)
    return (TEMPERATURE, SIGMOID)


def calibration_choose(
    oof_logits: np.ndarray, codes: np.ndarray, fold_ids: np.ndarray, candidates: tuple[str, ...]
) -> CalibrationChoice:
    """Pick none or the candidate that lowers the CV log loss by more than its standard error (module docstring).

    `codes[i]` is row i's class as a column of `oof_logits`; `fold_ids[i]` the fold it was held out in.
    """
    logits = np.asarray(oof_logits, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    per_row = {NONE: _row_log_loss(softmax(logits), codes)}
    folds = np.unique(fold_ids)
    for method in candidates:
        losses = np.empty(len(codes))
        for fold in folds:
            held = fold_ids == fold
            fitted = calibration_fit(method, logits[~held], codes[~held])
            losses[held] = _row_log_loss(fitted.apply(logits[held]), codes[held])
        per_row[method] = losses
    means = {method: float(losses.mean()) for method, losses in per_row.items()}
    best = min(candidates, key=lambda method: means[method]) if candidates else NONE
    gain = per_row[NONE] - per_row[best]
    standard_error = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("inf")
    others = ", ".join(f"{m} {means[m]:.4f}" for m in candidates if m != best)
    skipped = (
        ""
        if ISOTONIC in candidates
        else f"; isotonic not tried (needs {ISOTONIC_MIN_ROWS} rows and {ISOTONIC_MIN_PER_CLASS} per class)"
    )
    where = f"{len(folds)}-fold stratified CV log loss on {len(codes)} rows"
    if best != NONE and gain.mean() > standard_error:
        reason = (
            f"{best}: {where} {means[best]:.4f} vs {means[NONE]:.4f} uncalibrated "
            f"(gain {gain.mean():.4f} > its standard error {standard_error:.4f}; {others}{skipped})."
        )
        return CalibrationChoice(calibration_fit(best, logits, codes), reason, means)
    reason = (
        f"none: no map lowered the {where} by more than its standard error ({standard_error:.4f}): "
        f"uncalibrated {means[NONE]:.4f}, {best} {means[best]:.4f}{', ' + others if others else ''}{skipped}."
    )
    return CalibrationChoice(Calibrator(), reason, means)


def calibration_fit(method: str, logits: np.ndarray, codes: np.ndarray) -> Calibrator:
    """Fit one map on (logits, true class columns)."""
    logits = np.asarray(logits, dtype=np.float64)
    if method == NONE:
        return Calibrator()
    if method == TEMPERATURE:
        return Calibrator(TEMPERATURE, temperature=_temperature_fit(logits, codes))
    odds = log_odds(logits)
    columns = _fitted_columns(logits.shape[1])
    if method == SIGMOID:
        fits = [_platt_fit(odds[:, k], codes == k) for k in columns]
        return Calibrator(SIGMOID, slopes=np.array([a for a, _ in fits]), intercepts=np.array([b for _, b in fits]))
    if method == ISOTONIC:
        from sklearn.isotonic import IsotonicRegression

        xs, ys = [], []
        for k in columns:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(odds[:, k], codes == k)
            xs.append(np.asarray(iso.X_thresholds_, dtype=np.float64))
            ys.append(np.asarray(iso.y_thresholds_, dtype=np.float64))
        return Calibrator(ISOTONIC, steps_x=tuple(xs), steps_y=tuple(ys))
    raise ValueError(f"Unknown calibration method {method!r}")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def log_odds(logits: np.ndarray) -> np.ndarray:
    """(n, K) log(p_k / (1 − p_k)) under the softmax, computed without forming p (no overflow near 0 and 1)."""
    if logits.shape[1] == 2:
        margin = logits[:, 1] - logits[:, 0]
        return np.column_stack([-margin, margin])
    out = np.empty_like(logits)
    for k in range(logits.shape[1]):  # a loop over classes, not rows
        others = np.delete(logits, k, axis=1)
        top = others.max(axis=1)
        out[:, k] = logits[:, k] - (top + np.log(np.exp(others - top[:, None]).sum(axis=1)))
    return out


def expected_calibration_error(proba: np.ndarray, codes: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: |accuracy − confidence| per equal-width confidence bin, weighted by the bin's share of rows."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(codes)).astype(np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, correct, bins) - np.bincount(which, confidence, bins))
    return float(gap.sum() / max(total.sum(), 1))


def _fitted_columns(n_classes: int) -> list[int]:
    # Binary: one map on the second class's log-odds (the first is its complement); else one per class.
    return [1] if n_classes == 2 else list(range(n_classes))


def _row_log_loss(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(proba[np.arange(len(codes)), codes], _EPS, 1.0))


def _expit(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _temperature_fit(logits: np.ndarray, codes: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(codes))

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        top = scaled.max(axis=1)
        return float(np.mean(top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)) - scaled[rows, codes]))

    result = minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def _platt_fit(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's (a, b) for p = σ(a·score + b), with his smoothed targets (finite even on separable scores)."""
    from scipy.optimize import minimize

    n_pos = float(positive.sum())
    n_neg = float(len(positive) - n_pos)
    target = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] * scores + w[1]
        residual = _expit(z) - target
        value = float(np.sum(np.logaddexp(0.0, z) - target * z))
        return value, np.array([np.dot(residual, scores), residual.sum()])

    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])
