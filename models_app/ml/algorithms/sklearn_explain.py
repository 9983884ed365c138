"""Explanations for the scikit-learn families, vectorised over the batch (loops only over features or chunks).

- logistic regression: models_app/ml/explain.py's linear method as it is
  (coefficient × standardised value in the predicted class's logit).
- histogram gradient boosting, two classes: the tree-path method (Saabas's
  attribution, `explain_tree_paths`). Each row walks every tree; at each split
  the change in the node's value (the Newton step a node would predict as a
  leaf, scaled like the leaves) goes to the split's feature. The contributions
  add up exactly to the model's margin less its bias (the baseline and the
  roots' values), so they explain the logit the probability comes from, before
  calibration. Each leaf's path adds the same amounts whatever the row, so
  they are tabulated once per model (a leaf × column table, built one depth
  level at a time); scikit-learn's own compiled predictor, run on a copy of
  each tree whose leaves hold their leaf number, says which leaf every row
  reaches (its rules for missing values and categories, not ours), and the
  rows' leaves' table rows are added up: one predictor call and one gather per
  tree. A model too large for that table (over 8M cells) walks all trees
  together instead, one numpy step per depth level for a chunk of rows at a
  time (a test checks that both give the same numbers). It reads the fitted
  trees' node arrays (`_predictors`, `_bin_mapper`, the same private
  attributes `features_used` reads); a test checks the exact sum against
  `decision_function` on every row, so a change inside scikit-learn shows.
  It replaced the replacement method below for two classes because that one
  evaluates the whole ensemble once per used feature per row (15,000 rows/s for
  predict + explain at 100 trees × 30 features; the tree path: see
  bench/training_speed.py).
- histogram gradient boosting, more classes: explain.py's replacement method (a
  feature set to its training mean, a category to "unknown"; the change in the
  predicted class's log-odds), computed on the prepared matrix rather than the
  frame: every replaced copy of a chunk of rows goes to the trees in one call,
  and a feature no tree splits on is skipped (its contribution is exactly 0).
  The log-odds of one class among several is not a sum over trees, so paths
  cannot split it.
- TF-IDF + logistic regression: the same linear contributions on the sparse
  prepared row: coefficient × tf-idf value per token present (and coefficient
  × standardised value per tabular feature), top-k among the row's non-zero
  entries. Names are the tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models_app.ml import explain as linear_explain
from models_app.ml.algorithms.base import Explanation
from models_app.ml.algorithms.calibration import log_odds

# Rows × replaced features sent to the trees in one call (~20 MB of float64 at 30 features).
_REPLACEMENT_BATCH = 100_000


def explain_linear(pipeline: Any, frame: pd.DataFrame, class_names: list[str], predicted: np.ndarray, k: int):
    result = linear_explain.explain(pipeline, frame, class_names, predicted=predicted, top_k=k)
    names = np.asarray(result.features, dtype=object)[result.feature_index]
    return _padded(linear_explain.LINEAR, names, result.contribution, k)


TREE_PATH = "tree-path"
# Row × tree walks advanced together per depth level (~50 MB of working arrays at this size).
_PATH_BATCH = 1_000_000
# The most cells of the per-node path table `_TreeTable.leaf_paths` builds (8M floats, 64 MB); beyond it, walk.
_LEAF_PATH_CELLS_MAX = 8_000_000


def explain_trees(
    classifier: Any, prepared: np.ndarray, names: list[str], baseline: np.ndarray, predicted_column: np.ndarray, k: int
) -> Explanation:
    """`predicted_column[i]`: row i's predicted class as a column of the classifier's logits (see model_logits).

    Two classes: tree paths; more: feature replacement (see the module docstring)."""
    if getattr(classifier, "n_trees_per_iteration_", 0) == 1 and getattr(classifier, "_predictors", None):
        contributions, _ = tree_path_contributions(classifier, prepared)
        contributions = np.where((predicted_column == 1)[:, None], contributions, -contributions)
        index, values = linear_explain.top_contributors(contributions, k)
        return _padded(TREE_PATH, np.asarray(names, dtype=object)[index], values, k)
    return explain_trees_by_replacement(classifier, prepared, names, baseline, predicted_column, k)


def tree_path_contributions(classifier: Any, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows × columns contributions to the margin, rows' bias) for a two-class HistGradientBoostingClassifier.

    For every row, bias + the row's contributions summed = decision_function(row), up to rounding.
    """
    matrix = np.asarray(_as_predicted(classifier, prepared), dtype=np.float64)
    rows, width = matrix.shape
    trees = _TreeTable(classifier)
    bias = np.full(rows, float(np.ravel(classifier._baseline_prediction)[0]) + float(trees.value[trees.roots].sum()))
    contributions = np.zeros((rows, width))
    leaf_paths = trees.leaf_paths(width) if rows else None
    if leaf_paths is not None:
        # Each tree's leaf for every row, from scikit-learn's own predictor (its missing-value and category
        # rules, compiled), then each leaf's path contributions, computed once per model, added up.
        for leaves in trees.leaves(classifier, matrix):
            contributions += leaf_paths[leaves]
    else:  # a model too large to hold every leaf's path: walk the trees level by level
        chunk = max(1, _PATH_BATCH // max(1, len(trees.roots)))
        for start in range(0, rows, chunk):
            block = matrix[start : start + chunk]
            contributions[start : start + len(block)] = trees.walk(block)
    # The trees split the matrix as the classifier's encoder laid it out (categories first): back to input order.
    in_input_order = np.zeros_like(contributions)
    in_input_order[:, _input_columns(classifier, width)] = contributions
    return in_input_order, bias


def _as_predicted(classifier: Any, prepared: np.ndarray) -> Any:
    """The matrix as the classifier's own predict sees it (its input checks and any encoding)."""
    preprocess_x = getattr(classifier, "_preprocess_X", None)
    return preprocess_x(prepared, reset=False) if preprocess_x is not None else prepared


def _input_columns(classifier: Any, width: int) -> np.ndarray:
    """For each column the trees see, the input column it came from. With native categories the classifier
    encodes through a ColumnTransformer that puts the categorical columns first; without, it is the identity."""
    preprocessor = getattr(classifier, "_preprocessor", None)
    if preprocessor is None:
        return np.arange(width)
    order = []
    for _name, transformer, columns in preprocessor.transformers_:
        if transformer == "drop":
            continue
        picked = np.asarray(columns)
        order.extend((np.flatnonzero(picked) if picked.dtype == bool else picked.astype(np.int64)).tolist())
    if sorted(order) != list(range(width)):
        raise ValueError(f"the classifier's encoder lays out columns {order}, not a permutation of {width}")
    return np.asarray(order, dtype=np.int64)


class _TreeTable:
    """Every tree's nodes in one set of arrays (children and bitset indices offset), values scaled as leaves."""

    def __init__(self, classifier: Any) -> None:
        predictors = [per_iteration[0] for per_iteration in classifier._predictors]
        self.predictors = predictors
        sizes = np.array([len(p.nodes) for p in predictors], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        bitset_sizes = np.array([len(p.raw_left_cat_bitsets) for p in predictors], dtype=np.int64)
        bitset_offsets = np.concatenate([[0], np.cumsum(bitset_sizes)[:-1]])
        nodes = np.concatenate([p.nodes for p in predictors])
        at = np.repeat(offsets, sizes)
        self.roots = offsets
        self.is_leaf = nodes["is_leaf"].astype(bool)
        self.leaf_nodes = np.flatnonzero(self.is_leaf)
        self.depth = nodes["depth"].astype(np.int64)
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        left, right = nodes["left"].astype(np.int64) + at, nodes["right"].astype(np.int64) + at
        # children[2 * node + goes_left]: one gather per step instead of two and a select.
        self.children = np.column_stack([right, left]).ravel()
        self.categorical = nodes["is_categorical"].astype(bool)
        self.any_categorical = bool(self.categorical[~self.is_leaf].any())
        self.bitset = nodes["bitset_idx"].astype(np.int64) + np.repeat(bitset_offsets, sizes)
        # Leaves hold their shrunk values; a split node holds its unshrunk Newton step (the root 0): scaled alike.
        self.value = np.where(self.is_leaf, nodes["value"], nodes["value"] * classifier.learning_rate)
        # What stepping into a node adds to the estimate (value less its parent's): one gather per step.
        self.step = np.zeros(len(nodes))
        split = np.flatnonzero(~self.is_leaf)
        for children in (left[split], right[split]):
            self.step[children] = self.value[children] - self.value[split]
        self.left_bitsets = np.concatenate([p.raw_left_cat_bitsets for p in predictors]).astype(np.int64)
        if self.any_categorical:
            known, f_idx_map = classifier._bin_mapper.make_known_categories_bitsets()
            self.known_bitsets, self.f_idx_map = known.astype(np.int64), np.asarray(f_idx_map, dtype=np.int64)

    def leaf_paths(self, width: int) -> np.ndarray | None:
        """(leaves, width): what the path from its tree's root to each leaf adds to each column's contribution,
        leaves numbered as `leaves` gives them. None when that table would pass _LEAF_PATH_CELLS_MAX."""
        n_nodes = len(self.is_leaf)
        if n_nodes * width > _LEAF_PATH_CELLS_MAX:
            return None
        split = np.flatnonzero(~self.is_leaf)
        parent = np.full(n_nodes, -1, dtype=np.int64)
        parent[self.children[2 * split]] = split  # right children
        parent[self.children[2 * split + 1]] = split  # left children
        path = np.zeros((n_nodes, width))
        for level in range(1, int(self.depth.max(initial=0)) + 1):  # parents before their children
            nodes = np.flatnonzero(self.depth == level)
            path[nodes] = path[parent[nodes]]
            path[nodes, self.feature[parent[nodes]]] += self.step[nodes]
        return path[self.leaf_nodes]

    def leaves(self, classifier: Any, matrix: np.ndarray) -> Any:
        """For each tree in turn, every row's leaf (a row of `leaf_paths`): scikit-learn's own predictor run on
        a copy of the tree whose leaves hold their leaf number instead of their value."""
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        known, f_idx_map = classifier._bin_mapper.make_known_categories_bitsets()
        threads = _openmp_effective_n_threads()
        number = np.full(len(self.is_leaf), -1.0)
        number[self.leaf_nodes] = np.arange(len(self.leaf_nodes))
        for root, predictor in zip(self.roots, self.predictors, strict=True):
            nodes = predictor.nodes.copy()
            nodes["value"] = number[root : root + len(nodes)]
            numbered = TreePredictor(nodes, predictor.binned_left_cat_bitsets, predictor.raw_left_cat_bitsets)
            yield numbered.predict(matrix, known_cat_bitsets=known, f_idx_map=f_idx_map, n_threads=threads).astype(
                np.int64
            )

    def walk(self, block: np.ndarray) -> np.ndarray:
        """(len(block), width) contributions: every row down every tree, one depth level per step."""
        rows, width = block.shape
        node = np.tile(self.roots, rows)
        row = np.repeat(np.arange(rows), len(self.roots))
        live = ~self.is_leaf[node]
        node, row = node[live], row[live]
        flat = np.zeros(rows * width)
        while len(node):
            feature = self.feature[node]
            x = block[row, feature]
            go_left = x <= self.threshold[node]  # NaN: False here, decided just below
            if self.any_categorical:
                categorical = np.flatnonzero(self.categorical[node])
                go_left[categorical], as_missing = self._categorical(node[categorical], x[categorical])
                missing = np.union1d(np.flatnonzero(np.isnan(x)), categorical[as_missing])
            else:
                missing = np.flatnonzero(np.isnan(x))  # few rows: handled apart
            go_left[missing] = self.missing_left[node[missing]]
            child = self.children[2 * node + go_left]
            flat += np.bincount(row * width + feature, weights=self.step[child], minlength=flat.size)
            live = ~self.is_leaf[child]
            node, row = child[live], row[live]
        return flat.reshape(rows, width)

    def _categorical(self, node: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(goes left, counts as missing) at categorical splits, as scikit-learn's predictor decides them: in the
        split's left set → left; another category seen in training → right; anything else → as missing."""
        valid = ~np.isnan(x) & (x >= 0) & (x < 256)
        code = np.where(valid, x, 0).astype(np.int64)
        word, bit = code >> 5, code & 31
        in_left = (self.left_bitsets[self.bitset[node], word] >> bit) & 1 == 1
        known = (self.known_bitsets[self.f_idx_map[self.feature[node]], word] >> bit) & 1 == 1
        return valid & in_left, ~valid | (~in_left & ~known)


def explain_trees_by_replacement(
    classifier: Any, prepared: np.ndarray, names: list[str], baseline: np.ndarray, predicted_column: np.ndarray, k: int
) -> Explanation:
    """The replacement method (module docstring), for any number of classes."""
    rows, width = prepared.shape
    full = _predicted_log_odds(classifier, prepared, predicted_column)
    contributions = np.zeros((rows, width))
    used = features_used(classifier, width)
    if len(used) and rows:
        chunk = max(1, _REPLACEMENT_BATCH // len(used))
        for start in range(0, rows, chunk):
            block = prepared[start : start + chunk]
            copies = np.repeat(block[None, :, :], len(used), axis=0)  # (used, chunk rows, width)
            copies[np.arange(len(used)), :, used] = baseline[used][:, None]
            flat = copies.reshape(-1, width)
            replaced = _predicted_log_odds(
                classifier, flat, np.tile(predicted_column[start : start + len(block)], len(used))
            )
            contributions[start : start + len(block), used] = (
                full[start : start + len(block), None] - replaced.reshape(len(used), len(block)).T
            )
    index, values = linear_explain.top_contributors(contributions, k)
    return _padded(linear_explain.REPLACEMENT, np.asarray(names, dtype=object)[index], values, k)


def explain_sparse_linear(prepared: Any, weights: np.ndarray, names: np.ndarray, predicted: np.ndarray, k: int):
    """Top-k non-zero coefficient × value per row of a CSR matrix.

    `weights` is (classes, columns); `predicted[i]` is row i's class as a row of `weights`.
    """
    matrix = prepared.tocsr()
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    contribution = matrix.data * weights[predicted[rows], matrix.indices]
    keep = contribution != 0
    rows, columns, contribution = rows[keep], matrix.indices[keep], contribution[keep]
    # Only each row's k largest |contribution| (and ties with the k-th) can be shown: sort just those.
    candidates = _top_k_candidates(rows, np.abs(contribution), matrix.shape[0], k)
    if candidates is not None:
        rows, columns, contribution = rows[candidates], columns[candidates], contribution[candidates]
    order = np.lexsort((-np.abs(contribution), rows))  # by row, then largest |contribution| (ties: column order)
    rows, columns, contribution = rows[order], columns[order], contribution[order]
    starts = np.searchsorted(rows, np.arange(matrix.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    top = rank < k
    out_names = np.full((matrix.shape[0], k), "", dtype=object)
    out_values = np.full((matrix.shape[0], k), np.nan)
    out_names[rows[top], rank[top]] = names[columns[top]]
    out_values[rows[top], rank[top]] = contribution[top]
    return Explanation("linear-tokens", out_names, out_values)


# The most cells `_top_k_candidates` lays out at once (rows x the longest row): 8M floats, 64 MB.
_DENSE_CELLS_MAX = 8_000_000


def _top_k_candidates(rows: np.ndarray, magnitude: np.ndarray, n_rows: int, k: int) -> np.ndarray | None:
    """Positions of the entries at least as large as their row's k-th largest (rows sorted ascending).

    A lexsort of every entry cost more than half of the TF-IDF family's predict +
    explain; a row's k-th largest comes from one `np.partition` of the rows laid
    out side by side, after which only about k entries per row are sorted. None
    (sort them all) when the longest row would make that layout too big.
    """
    if len(rows) == 0:
        return None
    lengths = np.bincount(rows, minlength=n_rows)
    width = int(lengths.max())
    if width <= k or n_rows * width > _DENSE_CELLS_MAX:
        return None
    starts = np.zeros(n_rows, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    laid_out = np.full((n_rows, width), -1.0)  # magnitudes are >= 0: padding never counts as one of the k
    laid_out[rows, np.arange(len(rows)) - starts[rows]] = magnitude
    kth_largest = np.partition(laid_out, width - k, axis=1)[:, width - k]
    return np.flatnonzero(magnitude >= kth_largest[rows])


def model_logits(classifier: Any, prepared: Any) -> np.ndarray:
    """(n, classes in classifier.classes_ order) logits: a binary model's one margin becomes [0, margin]."""
    raw = np.asarray(classifier.decision_function(prepared), dtype=np.float64)
    if raw.ndim == 1:
        return np.column_stack([np.zeros(len(raw)), raw])
    return raw


def _predicted_log_odds(classifier: Any, prepared: np.ndarray, column: np.ndarray) -> np.ndarray:
    logits = model_logits(classifier, prepared)
    if logits.shape[1] == 2:  # log-odds of class 1 is the margin; of class 0 its negative
        return np.where(column == 1, logits[:, 1], -logits[:, 1])
    return log_odds(logits)[np.arange(len(column)), column]


def features_used(classifier: Any, width: int) -> np.ndarray:
    """Prepared columns some tree splits on (all of them if the model does not say), in input order: the trees
    number the columns as the classifier's encoder laid them out (_input_columns)."""
    predictors = getattr(classifier, "_predictors", None)
    if not predictors:
        return np.arange(width)
    used = {
        int(f)
        for per_iteration in predictors
        for tree in per_iteration
        for f in tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)]
    }
    inputs = _input_columns(classifier, width)
    return np.asarray(sorted(int(inputs[f]) for f in used), dtype=np.int64)


def _padded(method: str, names: np.ndarray, values: np.ndarray, k: int) -> Explanation:
    """Exactly k columns: names "" and values NaN past the model's last feature."""
    rows, have = names.shape
    if have >= k:
        return Explanation(method, names.astype(object), values.astype(np.float64))
    out_names = np.full((rows, k), "", dtype=object)
    out_values = np.full((rows, k), np.nan)
    out_names[:, :have] = names
    out_values[:, :have] = values
    return Explanation(method, out_names, out_values)
