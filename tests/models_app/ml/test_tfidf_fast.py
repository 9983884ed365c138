"""The array-kernel TF-IDF (tfidf_fast.py) gives scikit-learn's matrix entry for entry; the top-k
explanation of a sparse linear model keeps its order (largest |contribution| first, ties by column)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from models_app.ml.algorithms import algorithm_get, preprocess, sklearn_explain, tfidf_fast
from models_app.ml.algorithms.base import FeatureSpec, ModelSpec

# Punctuation, digits, underscores, one-letter words, repeated separators, tabs and newlines, upper case,
# empty texts, and (in UNICODE) accents, other scripts and Unicode digits: the cases where the default
# token pattern and lower-casing decide something.
ASCII_TEXTS = [
    "Chest pain, radiating to the LEFT arm; ECG: ST-elevation (V2-V4).",
    "no  pain\tno\nfever   x y z  a_b __ 12 3 4-5 e.g. i.e.",
    "",
    "   ",
    "a",
    "BP 120/80 mmHg HR 72 bpm; SpO2 98% on RA",
    "follow-up in 2 weeks -- patient's daughter called (re: meds)",
    "Refund REFUND refund!!! invoice#123 invoice_123",
    "\r\n\t\x0b\x0c\x1f\x7f trailing",
]
UNICODE_TEXTS = [
    "Fièvre élevée, naïve café ÉCOLE école",
    "Ｆｕｌｌｗｉｄｔｈ ４２ and ² ³ superscripts",
    "Straße STRASSE ǅ ǆ İstanbul",
    "日本語 テキスト 中文 한국어",
    "emoji 🙂 mixed with words",
    "Ωmega ωmega",
]


def _vectorizer(texts: list[str], **options) -> TfidfVectorizer:
    defaults = {"min_df": 1, "sublinear_tf": True, "dtype": np.float64}
    return TfidfVectorizer(**{**defaults, **options}).fit(texts)


def _assert_same(fast: sparse.csr_matrix, expected: sparse.csr_matrix) -> None:
    fast, expected = sparse.csr_matrix(fast), sparse.csr_matrix(expected)
    assert fast.shape == expected.shape
    assert fast.dtype == expected.dtype
    assert np.array_equal(fast.indptr, expected.indptr)
    assert np.array_equal(fast.indices, expected.indices)
    assert np.allclose(fast.data, expected.data, rtol=0, atol=1e-15)


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 3), (2, 2)])
def test_ascii_unicode_and_mixed_texts_give_scikit_learns_matrix(ngram_range: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    words = ["pain", "chest", "no", "fever", "a", "ok", "ST-elevation", "café", "Fièvre", "x_y", "12", "日本語"]
    generated = [
        " ".join(rng.choice(words, size=rng.integers(0, 12))) + rng.choice(["", ".", "!!", " ,"]) for _ in range(300)
    ]
    fitted_on = ASCII_TEXTS + UNICODE_TEXTS + generated
    vectorizer = _vectorizer(fitted_on, ngram_range=ngram_range)
    assert tfidf_fast.fast_possible(vectorizer)
    for texts in (ASCII_TEXTS, UNICODE_TEXTS, fitted_on, generated[::-1], ["unseen words only"]):
        expected = vectorizer.transform(texts)
        _assert_same(tfidf_fast.tfidf_transform(vectorizer, texts), expected)


def test_tokens_outside_the_vocabulary_and_a_capped_vocabulary_are_left_out_as_scikit_learn_does() -> None:
    texts = [f"w{i % 50} w{i % 7} common common" for i in range(400)]
    vectorizer = _vectorizer(texts, ngram_range=(1, 2), min_df=3, max_features=40, sublinear_tf=False)
    _assert_same(
        tfidf_fast.tfidf_transform(vectorizer, texts + ["w999 w998"]), vectorizer.transform(texts + ["w999 w998"])
    )


@pytest.mark.parametrize(
    "options",
    [{"binary": True}, {"stop_words": ["no"]}, {"lowercase": False}, {"token_pattern": r"\S+"}, {"analyzer": "char"}],
)
def test_other_configurations_are_left_to_scikit_learn(options: dict) -> None:
    vectorizer = _vectorizer(ASCII_TEXTS + UNICODE_TEXTS, **options)
    assert not tfidf_fast.fast_possible(vectorizer)
    _assert_same(tfidf_fast.tfidf_transform(vectorizer, ASCII_TEXTS), vectorizer.transform(ASCII_TEXTS))


def test_the_vectoriser_is_not_changed_so_a_saved_model_stays_byte_for_byte_the_same() -> None:
    vectorizer = _vectorizer(ASCII_TEXTS)
    before = dict(vectorizer.__dict__)
    tfidf_fast.tfidf_transform(vectorizer, ASCII_TEXTS)
    assert vectorizer.__dict__.keys() == before.keys()


def test_the_text_familys_prepare_step_gives_column_transformers_matrix() -> None:
    rng = np.random.default_rng(1)
    spec = ModelSpec(
        (FeatureSpec("note", "text"), FeatureSpec("age", "float"), FeatureSpec("ward", "category", ("a", "b"))),
        ("yes", "no"),
    )
    frame = pd.DataFrame(
        {
            "note": list(rng.choice(ASCII_TEXTS + UNICODE_TEXTS, size=120)),
            "age": np.where(rng.random(120) < 0.1, np.nan, rng.normal(50, 10, 120)),
            "ward": rng.choice(["a", "b", "c"], size=120),
        }
    )
    prepare = preprocess.linear_prepare(spec, text={"ngram_range": (1, 2), "min_df": 1, "sublinear_tf": True})
    prepared = preprocess.frame_prepare(frame, spec)
    prepare.fit(prepared)
    _assert_same(tfidf_fast.column_transform(prepare, prepared), prepare.transform(prepared))


def test_a_fitted_text_model_predicts_as_with_scikit_learns_transform() -> None:
    rng = np.random.default_rng(2)
    texts = [
        f"{rng.choice(['refund', 'crash', 'hello'])} w{rng.integers(0, 30)} W{rng.integers(0, 30)}." for _ in range(200)
    ]
    labels = np.asarray(["billing" if t.startswith("refund") else "other" for t in texts], dtype=object)
    spec = ModelSpec((FeatureSpec("body", "text"),), ("billing", "other"))
    frame = pd.DataFrame({"body": texts})
    model = algorithm_get("tfidf_logistic_regression").fit(frame, labels, spec=spec, params={"min_df": 1}, seed=0)
    prepared = preprocess.frame_prepare(frame, spec)
    expected = model._proba(model.pipeline[0].transform(prepared))
    assert np.array_equal(model.predict_proba(frame), expected)


def _top_k_reference(matrix: sparse.csr_matrix, weights: np.ndarray, predicted: np.ndarray, k: int):
    """One row at a time, as a person would: non-zero contributions, largest |value| first, ties by column."""
    names, values = np.full((matrix.shape[0], k), "", dtype=object), np.full((matrix.shape[0], k), np.nan)
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        cells = [
            (column, value * weights[predicted[row], column])
            for column, value in zip(matrix.indices[start:end], matrix.data[start:end], strict=True)
        ]
        cells = sorted((c for c in cells if c[1] != 0), key=lambda c: (-abs(c[1]), c[0]))[:k]
        for rank, (column, contribution) in enumerate(cells):
            names[row, rank], values[row, rank] = f"t{column}", contribution
    return names, values


@pytest.mark.parametrize("k", [1, 3, 5])
def test_sparse_explanations_keep_the_largest_contributions_in_order_with_ties_by_column(k: int) -> None:
    rng = np.random.default_rng(3)
    dense = rng.choice([0.0, 0.0, 0.0, 0.5, 1.0, -1.0, 2.0], size=(200, 40))  # few distinct values: many ties
    dense[7] = 0.0  # a row with nothing
    dense[8, :2] = [1.0, 0.0]  # a row shorter than k
    matrix = sparse.csr_matrix(dense)
    weights = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=(3, 40))
    predicted = rng.integers(0, 3, 200)
    names = np.asarray([f"t{i}" for i in range(40)], dtype=object)
    explanation = sklearn_explain.explain_sparse_linear(matrix, weights, names, predicted, k)
    expected_names, expected_values = _top_k_reference(matrix, weights, predicted, k)
    assert np.array_equal(explanation.names, expected_names)
    assert np.allclose(explanation.values, expected_values, equal_nan=True)


def test_sparse_explanations_of_very_long_rows_take_the_sort_everything_path_and_agree(monkeypatch) -> None:
    monkeypatch.setattr(sklearn_explain, "_DENSE_CELLS_MAX", 10)
    rng = np.random.default_rng(4)
    matrix = sparse.random(50, 30, density=0.5, random_state=4, format="csr")
    weights, predicted = rng.normal(size=(2, 30)), rng.integers(0, 2, 50)
    names = np.asarray([f"t{i}" for i in range(30)], dtype=object)
    explanation = sklearn_explain.explain_sparse_linear(matrix, weights, names, predicted, 5)
    expected_names, expected_values = _top_k_reference(matrix, weights, predicted, 5)
    assert np.array_equal(explanation.names, expected_names)
    assert np.allclose(explanation.values, expected_values, equal_nan=True)


def test_ascii_texts_never_reach_scikit_learns_per_text_analyser(monkeypatch) -> None:
    vectorizer = _vectorizer(ASCII_TEXTS, ngram_range=(1, 2))
    expected = vectorizer.transform(ASCII_TEXTS)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the per-text analyser ran")

    monkeypatch.setattr(vectorizer, "build_analyzer", refuse)
    _assert_same(tfidf_fast.tfidf_transform(vectorizer, ASCII_TEXTS), expected)


def test_only_each_rows_few_candidates_are_sorted() -> None:
    rows = np.repeat(np.arange(3), 10)  # three rows of ten entries
    magnitude = np.tile(np.arange(10, dtype=float), 3)
    candidates = sklearn_explain._top_k_candidates(rows, magnitude, 3, 2)
    assert candidates is not None and len(candidates) == 6  # the two largest of each row
    assert set(magnitude[candidates]) == {8.0, 9.0}
