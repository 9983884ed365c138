"""The scikit-learn families (logistic regression, histogram gradient boosting, TF-IDF + logistic regression).

Each family is fitted once per module on data with a known signal; tests read those fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models_app.ml.algorithms import algorithm_get, preprocess
from models_app.ml.algorithms.base import FeatureSpec, HyperparameterError, ModelSpec, TrainingDataError
from models_app.ml.algorithms.checks import training_data_check
from models_app.ml.artifacts import ArtifactIntegrityError

TABULAR = ModelSpec(
    features=(
        FeatureSpec("a", "float"),
        FeatureSpec("b", "float"),
        FeatureSpec("noise", "float"),
        FeatureSpec("c", "category", ("x", "y", "z")),
    ),
    class_names=("no", "yes", "unused"),
)
TEXT = ModelSpec(features=(FeatureSpec("body", "text"), FeatureSpec("length", "float")), class_names=("neg", "pos"))
FAST = {
    "logistic_regression": {},
    "hist_gradient_boosting": {"max_iter": 30},
    "tfidf_logistic_regression": {"min_df": 1},
}


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Histogram boosting's OpenMP threads spin against the other test processes on a 2-core machine (20× slower).

    Its OpenMP library is loaded with its module: import that first, or the limit misses it.
    """
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _tabular(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """yes iff a − b + (c is x) > 0.3: a, b and c carry the signal, noise none; some values missing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z"], size=n).astype(object),
        }
    )
    labels = np.where(frame.a - frame.b + (frame.c == "x") * 1.0 > 0.3, "yes", "no")
    frame.loc[::37, "b"] = np.nan
    frame.loc[::41, "c"] = None
    return frame, labels


def _texts(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Filler words plus, in 90% of texts, one word that gives the class away; `length` carries nothing."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(200)]
    y = rng.integers(0, 2, n)
    texts = []
    for label in y:
        words = list(rng.choice(filler, size=int(rng.integers(4, 12))))
        if rng.random() < 0.9:
            words.append(str(rng.choice(["great", "excellent"] if label else ["awful", "terrible"])))
        rng.shuffle(words)
        texts.append(" ".join(words))
    frame = pd.DataFrame({"body": texts, "length": [float(len(t)) for t in texts]})
    return frame, np.where(y == 1, "pos", "neg")


def _data(name: str, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, ModelSpec]:
    if name == "tfidf_logistic_regression":
        return (*_texts(n, seed), TEXT)
    return (*_tabular(n, seed), TABULAR)


@pytest.fixture(scope="module", params=list(FAST))
def fitted(request: pytest.FixtureRequest):
    name = request.param
    frame, labels, spec = _data(name, 600, seed=1)
    model = algorithm_get(name).fit(frame, labels, spec=spec, params=FAST[name], seed=7)
    return name, model, spec, frame, labels


def test_each_family_learns_the_signal_well_above_chance(fitted) -> None:
    name, model, spec, _frame, _labels = fitted
    holdout, truth, _ = _data(name, 400, seed=2)
    predicted = np.asarray(spec.class_names)[model.predict_proba(holdout).argmax(axis=1)]
    assert (predicted == truth).mean() > 0.85, name


def test_probabilities_follow_the_schema_and_an_absent_class_gets_zero_with_a_warning(fitted) -> None:
    name, model, spec, frame, _labels = fitted
    proba = model.predict_proba(frame.iloc[:50])
    assert proba.shape == (50, len(spec.class_names))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    if "unused" in spec.class_names:
        assert (proba[:, spec.class_names.index("unused")] == 0).all()
        assert any("'unused' has no examples" in w for w in model.info.warnings)


def test_explanations_name_the_features_or_tokens_that_carry_the_signal(fitted) -> None:
    name, model, spec, frame, labels = fitted
    explanation = model.explain(frame.iloc[:200], top_k=3)
    assert explanation.names.shape == explanation.values.shape == (200, 3)
    top = explanation.names[:, 0]
    if name == "tfidf_logistic_regression":
        assert explanation.method == "linear-tokens"
        strong = {"great", "excellent", "awful", "terrible"}
        has_word = np.array([bool(strong & set(t.split())) for t in frame.body.iloc[:200]])
        assert np.isin(top[has_word], list(strong)).mean() > 0.9
        assert (explanation.values[has_word, 0] > 0).all()  # the giveaway word pushes toward the predicted class
    else:
        two_classes = len(model.pipeline.classes_) == 2  # boosting: tree paths for two classes, else replacement
        trees = "tree-path" if two_classes else "replacement"
        assert explanation.method == ("linear" if name == "logistic_regression" else trees)
        assert (top == "noise").mean() < 0.1  # the column without signal rarely leads
        assert np.isin(explanation.names, ["a", "b", "c", "noise"]).all()
    one = model.explain(frame.iloc[[5]], top_k=3)
    assert list(one.names[0]) == list(explanation.names[5])  # a row alone is explained as within a batch


def test_save_and_load_give_the_same_probabilities_and_a_tampered_file_is_refused(fitted, tmp_path: Path) -> None:
    name, model, spec, frame, _labels = fitted
    path = tmp_path / "model.skops"
    sha256 = model.save(path)
    again = algorithm_get(name).load(path, sha256, spec=spec)
    np.testing.assert_array_equal(again.predict_proba(frame), model.predict_proba(frame))
    assert again.info == model.info
    # a memory address saved with the model (TF-IDF's stop-words cache key) would change its hash per process
    assert b"_stop_words_id" not in path.read_bytes()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        algorithm_get(name).load(path, sha256, spec=spec)


def test_an_artifact_is_refused_for_another_schema_or_family(fitted, tmp_path: Path) -> None:
    name, model, spec, _frame, _labels = fitted
    sha256 = model.save(tmp_path / "model.skops")
    changed = ModelSpec(spec.features, (*spec.class_names, "new class"))
    with pytest.raises(ArtifactIntegrityError, match="trained on classes"):
        algorithm_get(name).load(tmp_path / "model.skops", sha256, spec=changed)
    other = "hist_gradient_boosting" if name != "hist_gradient_boosting" else "logistic_regression"
    with pytest.raises(ArtifactIntegrityError, match=f"holds a {name} model"):
        algorithm_get(other).load(tmp_path / "model.skops", sha256, spec=spec)


def test_shuffled_rows_and_the_same_seed_give_the_same_model_byte_for_byte(fitted, tmp_path: Path) -> None:
    name, model, spec, frame, labels = fitted
    shuffle = np.random.default_rng(0).permutation(len(frame))
    again = algorithm_get(name).fit(
        frame.iloc[shuffle].reset_index(drop=True), labels[shuffle], spec=spec, params=FAST[name], seed=7
    )
    np.testing.assert_array_equal(again.predict_proba(frame), model.predict_proba(frame))
    assert again.info == model.info
    assert again.save(tmp_path / "again.skops") == model.save(tmp_path / "model.skops")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("logistic_regression", {"C": -1.0}, "C must be between 0.0001 and 10000.0, not -1.0"),
        ("logistic_regression", {"max_iter": 10.5}, "max_iter must be a whole number"),
        ("logistic_regression", {"class_weight_balanced": "yes"}, "class_weight_balanced must be true or false"),
        ("hist_gradient_boosting", {"max_leaf_nodes": 1}, "max_leaf_nodes must be between 2 and 255"),
        ("hist_gradient_boosting", {"learning_rate": "fast"}, "learning_rate must be a number"),
        ("tfidf_logistic_regression", {"ngram_max": 4}, "ngram_max must be between 1 and 3"),
        ("tfidf_logistic_regression", {"stop_words": "english"}, "Unknown hyperparameter\\(s\\): stop_words"),
    ],
)
def test_bad_hyperparameters_are_refused_naming_the_parameter(name: str, params: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        algorithm_get(name).validate_params(params)
    frame, labels, spec = _data(name, 60, seed=4)
    with pytest.raises(HyperparameterError, match=message):
        algorithm_get(name).fit(frame, labels, spec=spec, params=params, seed=0)


def test_a_class_with_one_example_is_refused_naming_it_its_count_and_the_minimum() -> None:
    frame, labels, spec = _data("logistic_regression", 60, seed=5)
    labels = labels.astype(object)
    labels[0] = "unused"
    with pytest.raises(TrainingDataError, match="at least 2 of them: class 'unused' has 1"):
        algorithm_get("logistic_regression").fit(frame, labels, spec=spec, params={}, seed=0)
    with pytest.raises(TrainingDataError, match="at least 5 of them: class 'unused' has 1"):
        training_data_check(labels, spec, min_per_class=5)


def test_one_class_and_labels_outside_the_schema_are_refused() -> None:
    with pytest.raises(TrainingDataError, match="at least two classes; found 'no' \\(3\\)"):
        training_data_check(["no", "no", "no"], TABULAR, min_per_class=1)
    with pytest.raises(TrainingDataError, match="not in the schema: 'maybe'"):
        training_data_check(["no", "yes", "maybe"], TABULAR, min_per_class=1)


def test_absent_classes_are_returned_as_warnings() -> None:
    assert training_data_check(["no", "yes"] * 3, TABULAR, min_per_class=2) == [
        "Class 'unused' has no examples in the training data: the model gives it probability 0."
    ]


def test_the_families_refuse_inputs_they_cannot_use() -> None:
    text_frame, text_labels, _ = _data("tfidf_logistic_regression", 40, seed=6)
    with pytest.raises(TrainingDataError, match="cannot use the text feature\\(s\\) body"):
        algorithm_get("logistic_regression").fit(text_frame, text_labels, spec=TEXT, params={}, seed=0)
    frame, labels, _ = _data("logistic_regression", 40, seed=6)
    with pytest.raises(TrainingDataError, match="needs a text feature"):
        algorithm_get("tfidf_logistic_regression").fit(frame, labels, spec=TABULAR, params={}, seed=0)
    with pytest.raises(TrainingDataError, match="lower min_df"):
        algorithm_get("tfidf_logistic_regression").fit(
            text_frame.iloc[:10], text_labels[:10], spec=TEXT, params={"min_df": 50}, seed=0
        )


def test_boosting_on_too_few_rows_to_split_says_so() -> None:
    frame, labels, spec = _data("hist_gradient_boosting", 30, seed=8)
    model = algorithm_get("hist_gradient_boosting").fit(frame, labels, spec=spec, params={"max_iter": 10}, seed=0)
    assert any("found no split" in w for w in model.info.warnings)
    assert (model.explain(frame, top_k=2).values == 0).all()  # nothing to attribute


def _boosting_data(classes: int, rows: int = 3000) -> tuple[pd.DataFrame, np.ndarray, ModelSpec]:
    rng = np.random.default_rng(classes)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),  # missing values
            "c": rng.choice(["x", "y", "z", "w"], size=rows),
            "noise": rng.normal(size=rows),
        }
    )
    score = frame.a + np.nan_to_num(frame.b) + (frame.c == "y") - (frame.c == "w") + rng.normal(scale=0.5, size=rows)
    names = ["neg", "pos", "mid"][:classes]
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    labels = np.asarray(names, dtype=object)[np.searchsorted(cuts, score)]
    features = (
        FeatureSpec("a", "float"),
        FeatureSpec("b", "float"),
        FeatureSpec("c", "category", ("x", "y", "z", "w")),
        FeatureSpec("noise", "float"),
    )
    return frame, labels, ModelSpec(features, tuple(names))


def test_boosting_tree_paths_add_up_exactly_to_the_margin_on_every_row() -> None:
    from models_app.ml.algorithms.sklearn_explain import tree_path_contributions

    frame, labels, spec = _boosting_data(2)
    model = algorithm_get("hist_gradient_boosting").fit(frame, labels, spec=spec, params={}, seed=1)
    unseen = frame.copy()
    unseen.loc[:40, "c"] = None  # a missing category
    unseen.loc[41:80, "b"] = np.nan
    matrix = model._transform(preprocess.frame_prepare(unseen, spec))
    classifier = model.pipeline[-1]
    contributions, bias = tree_path_contributions(classifier, matrix)
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, classifier.decision_function(matrix), atol=1e-9)

    explanation = model.explain(unseen.iloc[:500], top_k=4)
    assert explanation.method == "tree-path"
    assert (explanation.names[:, 0] != "noise").mean() > 0.9
    predicted = model.predict_proba(unseen.iloc[:500]).argmax(axis=1)
    margin = classifier.decision_function(matrix[:500]) - bias[:500]
    # All four features are shown, so the shown numbers are the whole margin, toward the predicted class.
    toward = np.where(predicted == spec.class_names.index(str(classifier.classes_[1])), margin, -margin)
    np.testing.assert_allclose(np.nansum(explanation.values, axis=1), toward, atol=1e-9)


def test_boosting_leaf_paths_and_the_level_by_level_walk_give_the_same_contributions(monkeypatch) -> None:
    from models_app.ml.algorithms import sklearn_explain

    frame, labels, spec = _boosting_data(2)
    model = algorithm_get("hist_gradient_boosting").fit(frame, labels, spec=spec, params={}, seed=1)
    unseen = frame.copy()
    unseen.loc[:40, "c"] = None  # a missing category
    unseen.loc[41:80, "b"] = np.nan
    unseen.loc[81:120, "c"] = "never seen"
    matrix = model._transform(preprocess.frame_prepare(unseen, spec))
    classifier = model.pipeline[-1]
    by_leaf, bias = sklearn_explain.tree_path_contributions(classifier, matrix)
    monkeypatch.setattr(sklearn_explain, "_LEAF_PATH_CELLS_MAX", 0)  # too large to tabulate: walk instead
    walked, same_bias = sklearn_explain.tree_path_contributions(classifier, matrix)
    np.testing.assert_allclose(by_leaf, walked, atol=1e-12)
    np.testing.assert_array_equal(bias, same_bias)


def test_boosting_with_three_classes_keeps_the_replacement_method() -> None:
    frame, labels, spec = _boosting_data(3)
    model = algorithm_get("hist_gradient_boosting").fit(frame, labels, spec=spec, params={}, seed=1)
    assert model.explain(frame.iloc[:50], top_k=2).method == "replacement"


def test_an_unused_feature_is_the_one_skipped_even_behind_the_category_encoder() -> None:
    # The trees number columns with the categories first; "constant" cannot help, so no tree splits on it,
    # and it is the column the replacement method skips (before, the skip hit the wrong column).
    from models_app.ml.algorithms.sklearn_explain import features_used

    frame, labels, spec = _boosting_data(3)
    frame["constant"] = 1.0  # first in the schema: before the category, where the two numberings differ
    spec = ModelSpec((FeatureSpec("constant", "float"), *spec.features), spec.class_names)
    model = algorithm_get("hist_gradient_boosting").fit(frame, labels, spec=spec, params={}, seed=1)
    order = list(preprocess.trees_prepare(spec)[1])
    used = [order[i] for i in features_used(model.pipeline[-1], len(order))]
    assert "constant" not in used and {"a", "b", "c"} <= set(used)
    explanation = model.explain(frame.iloc[:100], top_k=len(order))
    shown = explanation.names[explanation.values != 0]
    assert "constant" not in set(shown) and "c" in set(shown)


def test_probabilities_and_explanations_in_one_pass_equal_the_two_calls(fitted) -> None:
    from models_app.ml.algorithms.base import predict_and_explain

    _name, model, _spec, frame, _labels = fitted
    rows = frame.iloc[:300]
    proba, explanation = predict_and_explain(model, rows, top_k=3)
    np.testing.assert_array_equal(proba, model.predict_proba(rows))
    alone = model.explain(rows, top_k=3)
    assert explanation.method == alone.method
    np.testing.assert_array_equal(explanation.names, alone.names)
    np.testing.assert_array_equal(explanation.values, alone.values)
