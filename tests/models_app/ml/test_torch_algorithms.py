"""The torch families (torch_mlp, torch_text) behind models_app/ml/algorithms/base.py's interface.

Small data and few epochs: the models are fitted once per module, not per test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models_app.ml.algorithms import algorithm_get
from models_app.ml.algorithms.base import (
    FeatureSpec,
    HyperparameterError,
    ModelSpec,
    TrainingDataError,
    file_sha256,
)
from models_app.ml.algorithms.replay import replay_sample
from models_app.ml.artifacts import ArtifactIntegrityError

TABULAR = ModelSpec(
    features=(FeatureSpec("a", "float"), FeatureSpec("b", "float"), FeatureSpec("c", "category", ("x", "y", "z"))),
    class_names=("no", "yes", "unused"),
)
TEXT = ModelSpec(features=(FeatureSpec("body", "text"),), class_names=("neg", "pos"))
MLP_PARAMS = {"epochs": 30, "fine_tune_epochs": 5}
TEXT_PARAMS = {"epochs": 5, "embedding_dim": 16}


def _tabular(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """yes iff a − b + (c is x) > 0.3: a and c carry the signal, with a missing value here and there."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n) + shift,
            "b": rng.normal(size=n) + shift / 2,
            "c": rng.choice(["x", "y", "z"], size=n).astype(object),
        }
    )
    labels = np.where(frame.a - frame.b + (frame.c == "x") * 1.0 > 0.3, "yes", "no")
    frame.loc[::37, "b"] = np.nan
    frame.loc[::41, "c"] = None
    return frame, labels


def _texts(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Filler words plus, in 90% of texts, one word that gives the class away."""
    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(200)]
    y = rng.integers(0, 2, n)
    texts = []
    for label in y:
        words = list(rng.choice(filler, size=int(rng.integers(4, 12))))
        if rng.random() < 0.9:
            words.append(str(rng.choice(["great", "excellent"] if label else ["awful", "terrible"])))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    return pd.DataFrame({"body": texts}), np.where(y == 1, "pos", "neg")


def _accuracy(model, frame: pd.DataFrame, labels: np.ndarray) -> float:
    names = np.asarray(model.spec.class_names)
    return float((names[model.predict_proba(frame).argmax(axis=1)] == labels).mean())


@pytest.fixture(scope="module")
def mlp():
    frame, labels = _tabular(600, seed=0)
    return algorithm_get("torch_mlp").fit(frame, labels, spec=TABULAR, params=MLP_PARAMS, seed=7)


@pytest.fixture(scope="module")
def text_model():
    frame, labels = _texts(1000, seed=0)
    return algorithm_get("torch_text").fit(frame, labels, spec=TEXT, params=TEXT_PARAMS, seed=7)


@pytest.mark.parametrize(
    ("name", "fixture", "data", "spec"),
    [
        ("torch_mlp", "mlp", _tabular, TABULAR),
        ("torch_text", "text_model", _texts, TEXT),
    ],
)
def test_a_saved_model_loads_back_with_the_same_probabilities_and_explanations(
    name, fixture, data, spec, request, tmp_path
):
    model = request.getfixturevalue(fixture)
    frame, _ = data(50, seed=1)
    sha256 = model.save(tmp_path / "nested" / "model.safetensors")
    loaded = algorithm_get(name).load(tmp_path / "nested" / "model.safetensors", sha256, spec=spec)
    proba = model.predict_proba(frame)
    assert proba.shape == (50, len(spec.class_names)) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(loaded.predict_proba(frame), proba)
    before, after = model.explain(frame, top_k=2), loaded.explain(frame, top_k=2)
    assert before.names.shape == (50, 2) and np.array_equal(before.names, after.names)
    assert np.array_equal(before.values, after.values, equal_nan=True)
    assert loaded.info == model.info and list(tmp_path.joinpath("nested").iterdir()) == [
        tmp_path / "nested" / "model.safetensors"
    ]  # one file: weights, preparation and vocabulary together


@pytest.mark.parametrize(
    ("name", "data", "spec", "params"),
    [
        ("torch_mlp", _tabular, TABULAR, {"epochs": 3}),
        ("torch_text", _texts, TEXT, {"epochs": 2, "embedding_dim": 8}),
    ],
)
def test_the_same_rows_in_another_order_with_the_same_seed_give_identical_probabilities_and_artifact(
    name, data, spec, params, tmp_path
):
    frame, labels = data(300, seed=2)
    shuffled = np.random.default_rng(3).permutation(len(frame))
    algorithm = algorithm_get(name)
    first = algorithm.fit(frame, labels, spec=spec, params=params, seed=11)
    second = algorithm.fit(frame.iloc[shuffled], labels[shuffled], spec=spec, params=params, seed=11)
    assert np.array_equal(first.predict_proba(frame), second.predict_proba(frame))
    assert first.save(tmp_path / "1") == second.save(tmp_path / "2")
    other_seed = algorithm.fit(frame, labels, spec=spec, params=params, seed=12)
    assert not np.array_equal(first.predict_proba(frame), other_seed.predict_proba(frame))


def test_the_mlp_learns_the_known_signal_and_its_explanations_name_the_features_that_carry_it(mlp):
    frame, labels = _tabular(400, seed=5)
    assert _accuracy(mlp, frame, labels) > 0.9
    top = mlp.explain(frame, top_k=1).names[:, 0]
    assert np.isin(top, ["a", "b", "c"]).all() and (top == "a").mean() > 0.3


def test_a_class_without_training_examples_gets_probability_zero_and_a_warning(mlp):
    frame, _ = _tabular(20, seed=6)
    assert (mlp.predict_proba(frame)[:, 2] == 0).all()
    assert any("'unused' has no training example" in w for w in mlp.info.warnings)


def test_mlp_explanation_is_the_log_odds_change_when_a_feature_is_set_to_its_training_mean(mlp):
    frame, _ = _tabular(5, seed=8)
    frame.loc[2, "a"] = np.nan  # already at the mean: contributes nothing
    explanation = mlp.explain(frame, top_k=3)
    proba = mlp.predict_proba(frame)
    predicted = proba.argmax(axis=1)
    means = {p["name"]: p.get("mean") for p in mlp.preparation}

    def log_odds(p):
        chosen = p[np.arange(len(p)), predicted]
        return np.log(chosen) - np.log1p(-chosen)

    for column in ["a", "b", "c"]:
        replaced = frame.copy()
        replaced[column] = means[column] if column != "c" else None
        expected = log_odds(proba) - log_odds(mlp.predict_proba(replaced))
        got = np.where(explanation.names == column, explanation.values, 0.0).sum(axis=1)
        assert np.allclose(got, expected, atol=1e-4), column
    assert explanation.method == "replacement"
    assert abs(np.where(explanation.names[2] == "a", explanation.values[2], 0.0).sum()) < 1e-6


def test_the_text_model_learns_the_giveaway_words_and_explains_with_them(text_model):
    frame, labels = _texts(300, seed=9)
    assert _accuracy(text_model, frame, labels) > 0.85
    explanation = text_model.explain(frame, top_k=3)
    has_giveaway = frame.body.str.lower().str.contains("great|excellent|awful|terrible")
    top = explanation.names[:, 0][has_giveaway.to_numpy()]
    assert np.isin(top, ["great", "excellent", "awful", "terrible"]).mean() > 0.9
    assert explanation.method == "occlusion"


def test_text_occlusion_equals_predicting_again_without_the_token(text_model):
    frame = pd.DataFrame({"body": ["Great w1 w2 w1 GREAT", "awful", "nothing known here", None]})
    explanation = text_model.explain(frame, top_k=5)
    proba = text_model.predict_proba(frame)
    c = proba[0].argmax()
    without = text_model.predict_proba(pd.DataFrame({"body": ["w1 w2 w1"]}))[0]
    expected = (np.log(proba[0, c]) - np.log1p(-proba[0, c])) - (np.log(without[c]) - np.log1p(-without[c]))
    assert explanation.names[0, 0] == "great" and explanation.values[0, 0] == pytest.approx(expected, abs=1e-4)
    assert explanation.names[1, 0] == "awful" and explanation.names[1, 1] == "" and np.isnan(explanation.values[1, 1])
    assert (explanation.names[2:] == "").all() and np.isnan(explanation.values[2:]).all()  # no known token


def test_a_tampered_or_swapped_artifact_is_refused_before_it_is_parsed(mlp, text_model, tmp_path):
    path = tmp_path / "model.safetensors"
    sha256 = mlp.save(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        algorithm_get("torch_mlp").load(path, sha256, spec=TABULAR)
    text_sha256 = text_model.save(tmp_path / "text.safetensors")  # a valid file, but another family's
    with pytest.raises(ArtifactIntegrityError, match="expected 'torch_mlp'"):
        algorithm_get("torch_mlp").load(tmp_path / "text.safetensors", text_sha256, spec=TABULAR)
    other_classes = ModelSpec(features=TABULAR.features, class_names=("no", "yes"))
    sha256 = mlp.save(path)
    with pytest.raises(ArtifactIntegrityError, match="trained for classes"):
        algorithm_get("torch_mlp").load(path, sha256, spec=other_classes)


def test_warm_start_moves_less_than_a_fresh_fit_and_with_replay_keeps_accuracy_on_the_old_rows(mlp, tmp_path):
    old, old_labels = _tabular(600, seed=0)  # what the champion (the mlp fixture) was trained on
    new, new_labels = _tabular(150, seed=10, shift=1.5)
    rows = pd.concat([old, new], ignore_index=True)
    labels = np.concatenate([old_labels, new_labels])
    champion = algorithm_get("torch_mlp").load(tmp_path / "c", mlp.save(tmp_path / "c"), spec=TABULAR)
    algorithm = algorithm_get("torch_mlp")
    new_only = np.arange(600, 750)
    tuned = algorithm.fit(
        rows.iloc[new_only], labels[new_only], spec=TABULAR, params=MLP_PARAMS, seed=1, warm_start=champion
    )
    fresh = algorithm.fit(rows.iloc[new_only], labels[new_only], spec=TABULAR, params=MLP_PARAMS, seed=1)
    reference = champion.predict_proba(old)
    assert np.abs(tuned.predict_proba(old) - reference).mean() < np.abs(fresh.predict_proba(old) - reference).mean() / 2
    assert tuned.info.warm_started_from == champion.artifact_sha256 and tuned.info.epochs_run == 5
    mixed = replay_sample(new_only, np.arange(600), replay_fraction=0.5, seed=3)
    replayed = algorithm.fit(
        rows.iloc[mixed], labels[mixed], spec=TABULAR, params=MLP_PARAMS, seed=1, warm_start=champion
    )
    assert _accuracy(replayed, old, old_labels) >= _accuracy(champion, old, old_labels) - 0.02
    assert _accuracy(replayed, new, new_labels) > 0.9


def test_warm_start_refuses_another_family_schema_or_architecture(mlp, text_model):
    frame, labels = _tabular(100, seed=4)
    algorithm = algorithm_get("torch_mlp")
    with pytest.raises(ValueError, match="only be warm-started from a torch_mlp champion, not torch_text"):
        algorithm.fit(frame, labels, spec=TABULAR, params={}, seed=1, warm_start=text_model)
    with pytest.raises(ValueError, match=r"hidden sizes \[128, 64\]; the policy asks for \[64\]"):
        algorithm.fit(frame, labels, spec=TABULAR, params={"hidden_sizes": "64"}, seed=1, warm_start=mlp)
    renamed = ModelSpec(features=(*TABULAR.features[:2], FeatureSpec("d", "category")), class_names=TABULAR.class_names)
    with pytest.raises(ValueError, match="trained on features"):
        algorithm.fit(frame.rename(columns={"c": "d"}), labels, spec=renamed, params={}, seed=1, warm_start=mlp)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("torch_mlp", {"epochs": 0}, "epochs must be between 1 and 500"),
        ("torch_mlp", {"learning_rate": "fast"}, "learning_rate must be a number"),
        ("torch_mlp", {"hidden_sizes": "1000,1000"}, "hidden_sizes must be one of"),
        ("torch_mlp", {"class_weight_balanced": 1}, "class_weight_balanced must be true or false"),
        ("torch_mlp", {"epoch": 3}, "Unknown hyperparameter"),
        ("torch_text", {"embedding_dim": 2.5}, "embedding_dim must be a whole number"),
        ("torch_text", {"min_count": 0}, "min_count must be between 1"),
    ],
)
def test_wrong_hyperparameters_are_refused_with_a_message_naming_them(name, params, message):
    with pytest.raises(HyperparameterError, match=message):
        algorithm_get(name).validate_params(params)


def test_training_data_the_families_cannot_use_is_refused_with_the_reason():
    frame, labels = _tabular(50, seed=4)
    with pytest.raises(TrainingDataError, match="at least two label classes"):
        algorithm_get("torch_mlp").fit(frame, np.full(50, "no"), spec=TABULAR, params={}, seed=1)
    with pytest.raises(TrainingDataError, match="Labels not in the schema: maybe"):
        algorithm_get("torch_mlp").fit(
            frame, np.where(labels == "no", "maybe", labels), spec=TABULAR, params={}, seed=1
        )
    with pytest.raises(TrainingDataError, match="body is text"):
        algorithm_get("torch_mlp").fit(*_texts(20, seed=1), spec=TEXT, params={}, seed=1)
    with pytest.raises(TrainingDataError, match="exactly one text feature"):
        algorithm_get("torch_text").fit(frame, labels, spec=TABULAR, params={}, seed=1)


def test_progress_reports_every_epoch_and_small_data_is_not_calibrated():
    frame, labels = _tabular(120, seed=4)
    seen = []
    model = algorithm_get("torch_mlp").fit(
        frame, labels, spec=TABULAR, params={"epochs": 3}, seed=1, progress=lambda f, s, e: seen.append((f, s, e))
    )
    assert [e for _, _, e in seen] == [1, 2, 3] and seen[-1][:2] == (1.0, "epoch 3/3")
    assert model.info.calibration == "none" and "120 training rows" in model.info.calibration_reason


def test_a_progress_callback_that_raises_cancels_the_fit():
    def cancel(fraction, stage, epoch):
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        algorithm_get("torch_text").fit(*_texts(60, seed=1), spec=TEXT, params={}, seed=1, progress=cancel)


def test_replay_sample_mixes_all_new_rows_with_a_seeded_order_independent_sample_of_old_ones():
    new, old = np.arange(100, 110), np.arange(100)
    mixed = replay_sample(new, old, replay_fraction=0.5, seed=1)
    assert len(mixed) == 20 and set(new) <= set(mixed) and np.array_equal(mixed, np.sort(mixed))
    assert np.array_equal(mixed, replay_sample(new[::-1], old[::-1], 0.5, 1))
    assert not np.array_equal(mixed, replay_sample(new, old, 0.5, 2))
    assert np.array_equal(replay_sample(new, old[:3], 0.9, 1), np.r_[0:3, 100:110])  # fewer old rows than asked
    assert np.array_equal(replay_sample(new, old, 0.0, 1), new)
    with pytest.raises(ValueError, match=r"replay_fraction must be in \[0, 1\)"):
        replay_sample(new, old, 1.0, 1)


def test_replay_tops_up_every_class_of_the_old_rows_to_the_minimum():
    # 90 old rows of "a", 10 of "b"; 4 new rows of "a". A uniform draw of 4 old rows often misses "b".
    labels = np.array(["a"] * 90 + ["b"] * 10 + ["a"] * 4, dtype=object)
    new, old = np.arange(100, 104), np.arange(100)
    for seed in range(20):
        mixed = replay_sample(new, old, 0.5, seed, labels=labels, min_per_class=3)
        assert set(new) <= set(mixed)
        assert np.count_nonzero(labels[mixed] == "b") >= 3 and np.count_nonzero(labels[mixed] == "a") >= 3
        uniform = replay_sample(new, old, 0.5, seed)
        assert set(uniform) <= set(mixed)  # the top-up only adds to the uniform draw
        assert len(mixed) - len(uniform) == max(0, 3 - int(np.count_nonzero(labels[uniform] == "b")))
        assert np.array_equal(mixed, replay_sample(new[::-1], old[::-1], 0.5, seed, labels=labels, min_per_class=3))
    # A class with fewer old rows than the minimum contributes all it has.
    few = np.array(["a"] * 98 + ["b"] * 2 + ["a"] * 4, dtype=object)
    assert set(replay_sample(new, old, 0.5, 1, labels=few, min_per_class=5)) >= {98, 99}


def test_importing_the_algorithm_registry_does_not_import_torch():
    code = (
        "import sys, models_app.ml.algorithms, models_app.ml.algorithms.replay, models_app.ml.explain;"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'safetensors'))))"
    )
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert result.stdout.strip() == "[]"


def test_a_file_whose_hash_matches_but_is_not_a_torch_artifact_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a": 1}' + b" " * 8)
    with pytest.raises(ArtifactIntegrityError, match="is not a Loupe torch artifact"):
        algorithm_get("torch_text").load(path, file_sha256(path), spec=TEXT)
