"""Benchmark: training time and batch inference (predict_proba + explain) for every registered model family.

Usage:  .venv/bin/python bench/training_speed.py [--only NAME ...] [--sizes 10000 100000] [--text-items 50000]
                                                 [--threads N]

Pure arrays (models_app/ml, no database). For every algorithm in
`models_app.ml.algorithms.REGISTRY` (a family whose module is missing, e.g.
torch not installed, is skipped with a note): tabular families train on
synthetic rows × 30 features at each size, text families on synthetic texts.
Each fit runs the family's defaults, calibration choice included; the
throughput is predict_proba and explain(top_k=5) of the same rows through
base.predict_and_explain, as the prediction batch calls them (one pass over
the inputs where the family offers it).

Synthetic data with signal: tabular labels come from a noisy linear score plus
one interaction over 30 standard-normal features (two with missing values, one
a 4-way category); texts are 5-30 filler words with, in most texts, a word or
two from the class's own list and a numeric length column.

Issue 9's targets on 2 cores: logistic regression on 100k × 30 trains in
under 20 s; predict_proba + explanation at least 50,000 rows/s for
scikit-learn models; the torch MLP trains on 100k × 30 for 10 epochs in under
60 s on CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models_app.ml.algorithms import REGISTRY, algorithm_get  # noqa: E402
from models_app.ml.algorithms.base import FeatureSpec, ModelSpec, predict_and_explain  # noqa: E402

N_FEATURES = 30


def tabular(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, ModelSpec]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    weights = rng.normal(size=N_FEATURES) * (rng.random(N_FEATURES) < 0.4)
    score = x @ weights + 0.8 * x[:, 0] * x[:, 1] + rng.normal(size=n)
    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(x, columns=names)
    frame.loc[::17, "f03"] = np.nan
    frame.loc[::23, "f04"] = np.nan
    frame["f29"] = np.asarray(["a", "b", "c", "d"], dtype=object)[(x[:, 29] > 0) + 2 * (x[:, 5] > 1)]
    features = tuple(FeatureSpec(c, "float") for c in names[:-1]) + (
        FeatureSpec("f29", "category", ("a", "b", "c", "d")),
    )
    return frame, np.where(score > 0, "yes", "no"), ModelSpec(features, ("no", "yes"))


def texts(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, ModelSpec]:
    rng = np.random.default_rng(seed)
    filler = np.asarray([f"w{i}" for i in range(3000)], dtype=object)
    cues = {
        "billing": ["invoice", "refund", "charge", "payment", "receipt"],
        "technical": ["error", "crash", "login", "timeout", "install"],
        "other": ["thanks", "question", "hello", "feedback", "idea"],
    }
    classes = list(cues)
    y = rng.integers(0, len(classes), n)
    lengths = rng.integers(5, 31, n)
    words = filler[rng.zipf(1.3, size=(n, 30)) % len(filler)]
    out = []
    for i in range(n):  # data generation, not the code under test
        chosen = list(words[i, : lengths[i]])
        if rng.random() < 0.85:
            chosen.append(cues[classes[y[i]]][rng.integers(0, 5)])
        out.append(" ".join(chosen))
    frame = pd.DataFrame({"body": out, "length": lengths.astype(np.float64)})
    spec = ModelSpec((FeatureSpec("body", "text"), FeatureSpec("length", "float")), tuple(classes))
    return frame, np.asarray(classes, dtype=object)[y], spec


def measure(name: str, algorithm: Any, frame: pd.DataFrame, labels: np.ndarray, spec: ModelSpec) -> dict[str, Any]:
    start = time.perf_counter()
    model = algorithm.fit(frame, labels, spec=spec, params={}, seed=0)
    train = time.perf_counter() - start
    start = time.perf_counter()
    proba = model.predict_proba(frame)
    proba_s = time.perf_counter() - start
    # As a prediction batch asks for both (models_app/prediction.py): one pass where the family offers it.
    start = time.perf_counter()
    predict_and_explain(model, frame, top_k=5)
    both_s = time.perf_counter() - start
    accuracy = float((np.asarray(spec.class_names)[proba.argmax(axis=1)] == labels).mean())
    return {
        "algorithm": name,
        "rows": len(frame),
        "train_s": train,
        "proba_rows_s": len(frame) / proba_s,
        "proba_explain_rows_s": len(frame) / both_s,
        "train_accuracy": accuracy,
        "calibration": model.info.calibration,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None, help="registry names to run (default: all)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000], help="tabular row counts")
    parser.add_argument("--text-items", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS/OpenMP threads (default: all cores)")
    args = parser.parse_args()

    limiter = None
    if args.threads:
        import sklearn.ensemble  # noqa: F401  (load its OpenMP runtime before limiting it)
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
    print(f"cores: {os.cpu_count()}, threads limited to: {args.threads or 'no limit'}", flush=True)
    rows = []
    for name in args.only or list(REGISTRY):
        try:
            algorithm = algorithm_get(name)
        except ImportError as error:
            print(f"skipped {name}: {error}", flush=True)
            continue
        datasets = [texts(args.text_items, 1)] if algorithm.handles_text else [tabular(n, 1) for n in args.sizes]
        for frame, labels, spec in datasets:
            result = measure(name, algorithm, frame, labels, spec)
            rows.append(result)
            print(
                f"{name:28s} {result['rows']:>8,d} rows  train {result['train_s']:7.2f} s  "
                f"proba {result['proba_rows_s']:>10,.0f} rows/s  proba+explain {result['proba_explain_rows_s']:>9,.0f} "
                f"rows/s  train acc {result['train_accuracy']:.3f}  calibration {result['calibration']}",
                flush=True,
            )
    if limiter is not None:
        limiter.restore_original_limits()
    print("\n| algorithm | rows | train s | predict_proba rows/s | proba + explain rows/s | calibration |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['algorithm']} | {r['rows']:,} | {r['train_s']:.2f} | {r['proba_rows_s']:,.0f} | "
            f"{r['proba_explain_rows_s']:,.0f} | {r['calibration']} |"
        )


if __name__ == "__main__":
    main()
