"""The scikit-learn model families: logistic regression, histogram gradient boosting, TF-IDF + logistic regression.

One fit for all three (`_SklearnAlgorithm.fit`):

1. hyperparameters validated (base.params_validate), inputs checked against
   the family (text needs TF-IDF; TF-IDF needs a text feature), labels checked
   (checks.training_data_check: refused, or warnings for absent classes);
2. rows put in canonical order (by content hash), so the model never depends
   on the order rows were read in; every random choice takes the run's seed;
3. calibration chosen by stratified cross-validated log loss, or skipped on
   small data (calibration.py says how and why), the reason recorded;
4. the model fitted on all rows; convergence warnings recorded, not lost.

The fitted model (`SklearnModel`) maps the model's classes onto the schema's
(absent classes get probability 0), explains batches (sklearn_explain.py) and
saves itself as ONE skops file: a dict of the prepare → classify pipeline, the
calibration's arrays, the training baseline and the fit info, written with
canonical bytes (artifacts.skops_canonical), loaded only after its sha256
matches and only with the allow-listed types (artifacts.load_model).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models_app.ml.algorithms import preprocess, sklearn_explain, tfidf_fast
from models_app.ml.algorithms.base import (
    Explanation,
    FeatureSpec,
    FitInfo,
    FittedModel,
    Hyperparameter,
    ModelSpec,
    ProgressCallback,
    TrainingDataError,
    canonical_order,
    params_validate,
    row_content_hashes,
)
from models_app.ml.algorithms.calibration import (
    CalibrationChoice,
    Calibrator,
    calibration_candidates,
    calibration_choose,
    calibration_folds,
    calibration_skip_reason,
)
from models_app.ml.algorithms.checks import MIN_PER_CLASS_FLOOR, training_data_check
from models_app.ml.artifacts import ArtifactIntegrityError, load_model, save_model

FORMAT = "loupe-sklearn/1"
LINEAR, TREES, TEXT = "linear", "trees", "text"

_BALANCED = Hyperparameter(
    "class_weight_balanced", "bool", False, help="Weigh classes inversely to their frequency (rare classes count more)."
)


@dataclass(frozen=True)
class _SklearnAlgorithm:
    name: str
    label: str
    handles_text: bool
    hyperparameters: tuple[Hyperparameter, ...]
    kind: str

    def validate_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return params_validate(self.hyperparameters, raw)

    def fit(
        self,
        frame: pd.DataFrame,
        labels: np.ndarray,
        *,
        spec: ModelSpec,
        params: Mapping[str, Any],
        seed: int,
        progress: ProgressCallback | None = None,
        warm_start: FittedModel | None = None,
    ) -> SklearnModel:
        """Fit on `frame` (one column per spec feature) and `labels` (class names). Preconditions: module docstring."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import StratifiedKFold

        report = progress or (lambda fraction, stage, epoch: None)
        if warm_start is not None:
            raise TrainingDataError(f"{self.label} cannot be warm-started; retrain it from scratch.")
        params = self.validate_params(params)
        self._inputs_check(spec)
        labels = np.asarray([str(label) for label in labels], dtype=object)
        if len(labels) != len(frame):
            raise TrainingDataError(f"{len(labels)} labels for {len(frame)} rows.")
        notes = training_data_check(labels, spec, MIN_PER_CLASS_FLOOR)
        report(0.0, "preparing the rows", None)
        prepared = preprocess.frame_prepare(frame, spec)
        order = canonical_order(row_content_hashes(prepared, labels))
        prepared, labels = prepared.iloc[order].reset_index(drop=True), labels[order]
        classes = sorted(set(labels))  # scikit-learn's own order of the model's classes
        counts = {name: int((labels == name).sum()) for name in classes}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            skip = calibration_skip_reason(counts)
            if skip is not None:
                choice = CalibrationChoice(Calibrator(), skip, {})
            else:
                folds = StratifiedKFold(calibration_folds(len(labels)), shuffle=True, random_state=seed)
                logits = np.empty((len(labels), len(classes)))
                fold_ids = np.empty(len(labels), dtype=np.int64)
                splits = list(folds.split(np.zeros(len(labels)), labels))
                for number, (train, held) in enumerate(splits):
                    report(0.1 + 0.6 * number / len(splits), f"calibration fold {number + 1}/{len(splits)}", None)
                    fold_model = self._fit_pipeline(prepared.iloc[train], labels[train], spec, params, seed)
                    logits[held] = sklearn_explain.model_logits(
                        fold_model[-1], fold_model[0].transform(prepared.iloc[held])
                    )
                    fold_ids[held] = number
                codes = np.searchsorted(np.asarray(classes, dtype=object), labels)
                choice = calibration_choose(logits, codes, fold_ids, calibration_candidates(counts))
            report(0.75, "fitting the model on all rows", None)
            pipeline = self._fit_pipeline(prepared, labels, spec, params, seed)
        notes += sorted({f"{self.label}: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)})
        baseline = np.zeros(0)
        if self.kind == TREES:  # the replacement method's reference: training means; categories "unknown" (NaN)
            matrix = pipeline[0].transform(prepared)
            if not len(sklearn_explain.features_used(pipeline[-1], matrix.shape[1])):
                notes.append(
                    f"{self.label} found no split: every prediction is the training class frequencies "
                    "(a leaf needs 20 rows; label more, or use logistic regression on data this small)."
                )
            native = pipeline[-1].categorical_features
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a column with no values: mean NaN, i.e. "missing"
                baseline = np.where(np.asarray(native, dtype=bool), np.nan, np.nanmean(matrix, axis=0))
        info = FitInfo(
            algorithm=self.name,
            params=dict(params),
            seed=seed,
            calibration=choice.calibrator.method,
            calibration_reason=choice.reason,
            library_versions=_library_versions(),
            warnings=notes,
        )
        report(1.0, "done", None)
        return SklearnModel(self.name, spec, info, pipeline, choice.calibrator, baseline)

    def load(self, path: Path, expected_sha256: str, *, spec: ModelSpec) -> SklearnModel:
        """Hash first (artifacts.load_model), allow-listed types only; then the schema must be the one trained on."""
        state = load_model(path, expected_sha256)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ArtifactIntegrityError(f"Artifact {path.name} is not a {FORMAT} model file.")
        if state["algorithm"] != self.name:
            raise ArtifactIntegrityError(f"Artifact {path.name} holds a {state['algorithm']} model, not {self.name}.")
        trained = _spec_from_state(state["spec"])
        if trained != spec:
            raise ArtifactIntegrityError(
                f"Artifact {path.name} was trained on classes {list(trained.class_names)} and features "
                f"{[f.name for f in trained.features]}; the schema now has classes {list(spec.class_names)} "
                f"and features {[f.name for f in spec.features]} (or their types or categories changed)."
            )
        for name, vectorizer in _vectorizers(state["pipeline"]).items():
            vectorizer.vocabulary_ = _tokens_unpack(state["vocabularies"][name])
        return SklearnModel(
            self.name,
            spec,
            FitInfo(**state["info"]),
            state["pipeline"],
            Calibrator.from_state(state["calibration"]),
            np.asarray(state["baseline"], dtype=np.float64),
        )

    def _inputs_check(self, spec: ModelSpec) -> None:
        text = [f.name for f in spec.features if f.dtype == preprocess.TEXT]
        if text and not self.handles_text:
            raise TrainingDataError(
                f"{self.label} cannot use the text feature(s) {', '.join(text)}; choose TF-IDF + logistic regression."
            )
        if self.kind == TEXT and not text:
            raise TrainingDataError(f"{self.label} needs a text feature; the schema has none.")
        if not spec.features:
            raise TrainingDataError("The schema has no features to train on.")

    def _fit_pipeline(
        self, prepared: pd.DataFrame, labels: np.ndarray, spec: ModelSpec, params: Mapping[str, Any], seed: int
    ) -> Any:
        from sklearn.pipeline import Pipeline

        pipeline = Pipeline(
            [("prepare", self._prepare(spec, params)), ("classify", self._classifier(spec, params, seed))]
        )
        try:
            return pipeline.fit(prepared, labels)
        except ValueError as error:  # TfidfVectorizer: "After pruning, no terms remain" and kin
            if self.kind == TEXT and ("terms remain" in str(error) or "min_df" in str(error)):
                raise TrainingDataError(
                    f"No token appears in at least min_df={params['min_df']} of {len(labels)} texts; lower min_df."
                ) from error
            raise

    def _prepare(self, spec: ModelSpec, params: Mapping[str, Any]) -> Any:
        if self.kind == TREES:
            return preprocess.trees_prepare(spec)[0]
        if self.kind == TEXT:
            text = {
                "ngram_range": (1, params["ngram_max"]),
                "min_df": params["min_df"],
                "max_features": params["max_features"],
                "sublinear_tf": True,
                "dtype": np.float64,
            }
            return preprocess.linear_prepare(spec, text=text)
        return preprocess.linear_prepare(spec)

    def _classifier(self, spec: ModelSpec, params: Mapping[str, Any], seed: int) -> Any:
        weight = "balanced" if params["class_weight_balanced"] else None
        if self.kind == TREES:
            from sklearn.ensemble import HistGradientBoostingClassifier

            native = preprocess.trees_prepare(spec)[2]
            return HistGradientBoostingClassifier(
                learning_rate=params["learning_rate"],
                max_iter=params["max_iter"],
                max_leaf_nodes=params["max_leaf_nodes"],
                l2_regularization=params["l2_regularization"],
                class_weight=weight,
                categorical_features=native if any(native) else None,
                random_state=seed,
            )
        from sklearn.linear_model import LogisticRegression

        max_iter = params["max_iter"] if self.kind == LINEAR else 1000
        return LogisticRegression(C=params["C"], max_iter=max_iter, class_weight=weight, random_state=seed)


class SklearnModel:
    """A fitted scikit-learn family (base.FittedModel)."""

    def __init__(
        self,
        algorithm: str,
        spec: ModelSpec,
        info: FitInfo,
        pipeline: Any,
        calibrator: Calibrator,
        baseline: np.ndarray,
    ) -> None:
        self.algorithm, self.spec, self.info = algorithm, spec, info
        self.pipeline, self.calibrator, self.baseline = pipeline, calibrator, baseline
        index = {name: i for i, name in enumerate(spec.class_names)}
        # the classifier's classes (its logit columns) -> their positions in the schema
        self._columns = np.asarray([index[str(c)] for c in pipeline.classes_], dtype=np.int64)
        self._column_of = np.full(len(spec.class_names), -1, dtype=np.int64)
        self._column_of[self._columns] = np.arange(len(self._columns))
        self._names: np.ndarray | None = None

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._proba(self._transform(preprocess.frame_prepare(frame, self.spec)))

    def explain(self, frame: pd.DataFrame, *, top_k: int = 5) -> Explanation:
        return self.predict_proba_and_explain(frame, top_k=top_k)[1]

    def predict_proba_and_explain(self, frame: pd.DataFrame, *, top_k: int = 5) -> tuple[np.ndarray, Explanation]:
        """predict_proba and explain of the same rows, the inputs prepared and transformed once (base.py's
        predict_and_explain): for TF-IDF the vectoriser's transform is most of the cost of either."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        prepared = preprocess.frame_prepare(frame, self.spec)
        matrix = self._transform(prepared)
        proba = self._proba(matrix)
        return proba, self._explain(prepared, matrix, proba.argmax(axis=1), top_k)

    def _explain(self, prepared: pd.DataFrame, matrix: Any, predicted: np.ndarray, top_k: int) -> Explanation:
        kind = _ALGORITHMS[self.algorithm].kind
        if kind == LINEAR:
            return sklearn_explain.explain_linear(
                self.pipeline, prepared, list(self.spec.class_names), predicted, top_k
            )
        if kind == TREES:
            order = preprocess.trees_prepare(self.spec)[1]
            return sklearn_explain.explain_trees(
                self.pipeline[-1], matrix, order, self.baseline, self._column_of[predicted], top_k
            )
        from models_app.ml.explain import linear_weights

        if self._names is None:
            self._names = preprocess.prepared_names(self.pipeline[0])
        weights = linear_weights(self.pipeline, list(self.spec.class_names))
        return sklearn_explain.explain_sparse_linear(matrix, weights, self._names, predicted, top_k)

    def save(self, path: Path) -> str:
        # skops writes a dict entry by entry with its own metadata: a 50k-token vocabulary would be tens of
        # megabytes of JSON. Each vocabulary travels as one UTF-8 array instead, lifted out for the dump.
        # `_stop_words_id` is a memory address (a cache key scikit-learn re-derives when absent): left in, the
        # same model would hash differently in every process.
        vectorizers = _vectorizers(self.pipeline)
        held = {name: v.vocabulary_ for name, v in vectorizers.items()}
        cache_keys = {name: v.__dict__.pop("_stop_words_id", None) for name, v in vectorizers.items()}
        state = {
            "format": FORMAT,
            "algorithm": self.algorithm,
            "spec": _spec_state(self.spec),
            "info": asdict(self.info),
            "pipeline": self.pipeline,
            "calibration": self.calibrator.state(),
            "baseline": self.baseline,
            "vocabularies": {name: _tokens_pack(vocabulary) for name, vocabulary in held.items()},
        }
        try:
            for vectorizer in vectorizers.values():
                vectorizer.vocabulary_ = {}
            return save_model(state, path)
        finally:
            for name, vectorizer in vectorizers.items():
                vectorizer.vocabulary_ = held[name]
                if cache_keys[name] is not None:
                    vectorizer._stop_words_id = cache_keys[name]

    def _transform(self, prepared: pd.DataFrame) -> Any:
        if _ALGORITHMS[self.algorithm].kind == TEXT:  # the vectoriser on array kernels, the same matrix
            return tfidf_fast.column_transform(self.pipeline[0], prepared)
        return self.pipeline[0].transform(prepared)

    def _proba(self, matrix: Any) -> np.ndarray:
        calibrated = self.calibrator.apply(sklearn_explain.model_logits(self.pipeline[-1], matrix))
        out = np.zeros((calibrated.shape[0], len(self.spec.class_names)))
        out[:, self._columns] = calibrated
        return out


def _vectorizers(pipeline: Any) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return {name: t for name, t, _columns in pipeline[0].transformers_ if isinstance(t, TfidfVectorizer)}


def _tokens_pack(vocabulary: Mapping[str, int]) -> np.ndarray:
    """Tokens in column order as one UTF-8 byte array, newline-separated (a token is never a newline)."""
    tokens = sorted(vocabulary, key=vocabulary.__getitem__)
    return np.frombuffer("\n".join(tokens).encode(), dtype=np.uint8).copy()


def _tokens_unpack(packed: np.ndarray) -> dict[str, int]:
    text = np.asarray(packed, dtype=np.uint8).tobytes().decode()
    return {token: i for i, token in enumerate(text.split("\n"))} if text else {}


def _spec_state(spec: ModelSpec) -> dict[str, Any]:
    return {
        "features": [[f.name, f.dtype, list(f.categories)] for f in spec.features],
        "class_names": list(spec.class_names),
    }


def _spec_from_state(state: Mapping[str, Any]) -> ModelSpec:
    features = tuple(FeatureSpec(str(n), str(d), tuple(str(c) for c in cats)) for n, d, cats in state["features"])
    return ModelSpec(features, tuple(str(c) for c in state["class_names"]))


def _library_versions() -> dict[str, str]:
    import scipy
    import sklearn
    import skops

    return {
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "skops": skops.__version__,
    }


LOGISTIC_REGRESSION = _SklearnAlgorithm(
    name="logistic_regression",
    label="Logistic regression (scikit-learn)",
    handles_text=False,
    kind=LINEAR,
    hyperparameters=(
        Hyperparameter("C", "float", 1.0, 1e-4, 1e4, help="Inverse regularisation strength; smaller is simpler."),
        _BALANCED,
        Hyperparameter("max_iter", "int", 1000, 50, 10_000, help="Solver iterations before giving up."),
    ),
)
HIST_GRADIENT_BOOSTING = _SklearnAlgorithm(
    name="hist_gradient_boosting",
    label="Histogram gradient boosting (scikit-learn)",
    handles_text=False,
    kind=TREES,
    hyperparameters=(
        Hyperparameter("learning_rate", "float", 0.1, 0.001, 1.0, help="Shrinkage of each tree's step."),
        Hyperparameter("max_iter", "int", 100, 10, 2000, help="Boosting rounds (fewer if early stopping stops)."),
        Hyperparameter("max_leaf_nodes", "int", 31, 2, 255, help="Leaves per tree."),
        Hyperparameter("l2_regularization", "float", 0.0, 0.0, 1000.0, help="L2 penalty on leaf values."),
        _BALANCED,
    ),
)
TFIDF_LOGISTIC_REGRESSION = _SklearnAlgorithm(
    name="tfidf_logistic_regression",
    label="TF-IDF + logistic regression (scikit-learn)",
    handles_text=True,
    kind=TEXT,
    hyperparameters=(
        Hyperparameter("ngram_max", "int", 2, 1, 3, help="Longest word sequence counted as a token (1 = words)."),
        Hyperparameter("min_df", "int", 2, 1, 1000, help="A token must appear in at least this many texts."),
        Hyperparameter("max_features", "int", 50_000, 100, 1_000_000, help="Vocabulary size (most frequent kept)."),
        Hyperparameter("C", "float", 4.0, 1e-4, 1e4, help="Inverse regularisation strength; smaller is simpler."),
        _BALANCED,
    ),
)
_ALGORITHMS = {a.name: a for a in (LOGISTIC_REGRESSION, HIST_GRADIENT_BOOSTING, TFIDF_LOGISTIC_REGRESSION)}
