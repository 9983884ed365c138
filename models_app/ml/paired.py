"""Is the candidate better than the champion on these rows, or can this holdout not tell?

`compare_paired` replaces "the page shows +0.006" with a decision a reader can
check. Both models predicted the *same* rows, so the comparison is paired:

- What can differ is only the rows where exactly one model is right (the
  discordant pairs). The exact McNemar test asks whether those split unevenly
  more than chance would: a two-sided binomial test of "candidate right,
  champion wrong" out of all discordant rows, p = ½ (`scipy.stats.binomtest`;
  the same p as statsmodels' `mcnemar(exact=True)`). No discordant rows: p = 1.
- The paired bootstrap resamples rows, each row carrying both models'
  outcomes (see `resampling` for how), and gives a percentile interval of the accuracy difference and of the log-loss
  difference, at level 1 − alpha.
- The minimum detectable effect (MDE) is the smallest accuracy difference this
  many rows would detect with probability `power` at level `alpha`, from
  Connor's (1987) sample-size formula for McNemar's test,
  n = (z₁₋α/₂·√ψ + z_power·√(ψ − δ²))² / δ², solved for δ, where ψ is the
  discordance rate. ψ is the observed rate, but never below δ itself (a
  difference of δ needs at least that share of rows to disagree), so two
  models that agree on every row still get a finite, honest MDE rather than 0.
- Subgroups (given `groups`, as `evaluation.evaluate` takes them): the same
  paired bootstrap of the accuracy difference on each subgroup's rows alone,
  for every subgroup large enough to judge by `evaluation`'s rule (at least
  `min_group_size` rows; smaller ones keep their `n` and say why they are not
  judged). Each subgroup draws from its own stream (seed, feature, value), so
  its interval does not move with the other subgroups. This is what a
  subgroup promotion gate reads (governance/gates.py): an interval of the
  difference on the same rows, not one model's interval against the other's
  point estimate.
- Verdict: "better" (or "worse") only when McNemar rejects at `alpha` *and*
  the bootstrap interval lies wholly on that side of 0; when the two disagree
  the evidence is borderline, and for a promotion gate the safe reading is
  "not distinguishable on N rows (the smallest difference this holdout could
  detect is about X points)".

Differences are candidate − champion: a positive accuracy difference and a
negative log-loss difference favour the candidate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models_app.ml.evaluation import (
    DEFAULT_MIN_GROUP_SIZE,
    DEFAULT_N_BOOT,
    check_positive_int,
    encode_groups,
    encode_inputs,
    row_log_loss,
    subgroup_rows,
)
from models_app.ml.resampling import (
    check_n_boot,
    check_seed,
    percentile_interval,
    resampled_code_counts,
    resampled_means,
    rng_for,
)

BETTER = "better"
WORSE = "worse"
NOT_DISTINGUISHABLE = "not distinguishable"


def compare_paired(
    y_true: Sequence[Any] | np.ndarray,
    proba_champion: np.ndarray,
    proba_candidate: np.ndarray,
    class_names: Sequence[str],
    *,
    groups: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, Any]:
    """The paired comparison of two models' probabilities on the same labelled rows, JSON-serialisable.

    Preconditions as `evaluation.evaluate` for each probability matrix (same
    rows, same class order) and for `groups` and `min_group_size`, which give
    the per-subgroup differences under "subgroups" (empty without `groups`).
    Deterministic for a given `seed`.
    """
    from scipy.stats import binomtest

    truth, champion = encode_inputs(y_true, proba_champion, class_names, proba_name="proba_champion")
    _, candidate = encode_inputs(y_true, proba_candidate, class_names, proba_name="proba_candidate")
    check_n_boot(n_boot)
    check_seed(seed)
    check_positive_int("min_group_size", min_group_size)
    group_labels = encode_groups(groups, len(truth))
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    n = len(truth)
    settings = {
        "alpha": float(alpha),
        "power": float(power),
        "interval_level": 1 - float(alpha),
        "n_bootstrap": int(n_boot),
        "seed": int(seed),
        "min_group_size": int(min_group_size),
    }
    if n == 0:
        return _empty(settings, features=list(group_labels))

    champion_right = champion.argmax(axis=1) == truth
    candidate_right = candidate.argmax(axis=1) == truth
    champion_only = int((champion_right & ~candidate_right).sum())
    candidate_only = int((candidate_right & ~champion_right).sum())
    discordant = champion_only + candidate_only
    p_value = float(binomtest(candidate_only, discordant, 0.5).pvalue) if discordant else 1.0

    champion_loss = row_log_loss(truth, champion)
    candidate_loss = row_log_loss(truth, candidate)
    accuracy_ci = _accuracy_difference_ci(
        champion_right, candidate_right, n_boot=n_boot, rng=rng_for(seed, "paired accuracy"), level=1 - alpha
    )
    boot_loss = resampled_means(candidate_loss - champion_loss, n_boot=n_boot, rng=rng_for(seed, "paired log loss"))
    log_loss_ci = percentile_interval(boot_loss, level=1 - alpha)

    difference = (candidate_only - champion_only) / n
    mde = minimum_detectable_effect(n=n, discordance_rate=discordant / n, alpha=alpha, power=power)
    if p_value < alpha and difference > 0 and accuracy_ci[0] > 0:
        verdict = BETTER
    elif p_value < alpha and difference < 0 and accuracy_ci[1] < 0:
        verdict = WORSE
    else:
        verdict = NOT_DISTINGUISHABLE
    return {
        "n": n,
        "accuracy_champion": float(champion_right.mean()),
        "accuracy_candidate": float(candidate_right.mean()),
        "accuracy_difference": float(difference),
        "accuracy_difference_ci": accuracy_ci,
        "log_loss_champion": float(champion_loss.mean()),
        "log_loss_candidate": float(candidate_loss.mean()),
        "log_loss_difference": float(candidate_loss.mean() - champion_loss.mean()),
        "log_loss_difference_ci": log_loss_ci,
        "both_right": int((champion_right & candidate_right).sum()),
        "both_wrong": int((~champion_right & ~candidate_right).sum()),
        "champion_only_right": champion_only,
        "candidate_only_right": candidate_only,
        "net_rows": candidate_only - champion_only,
        "discordance_rate": discordant / n,
        "mcnemar_p": p_value,
        "mcnemar_method": "exact: two-sided binomial test on the discordant rows, p = 0.5",
        "minimum_detectable_effect": mde,
        "verdict": verdict,
        "verdict_words": _words(
            verdict, n=n, difference=difference, ci=accuracy_ci, p_value=p_value, mde=mde, level=1 - alpha
        ),
        "subgroups": _subgroups(
            champion_right,
            candidate_right,
            group_labels,
            min_group_size=min_group_size,
            n_boot=n_boot,
            seed=seed,
            level=1 - alpha,
        ),
        **settings,
    }


def _accuracy_difference_ci(
    champion_right: np.ndarray, candidate_right: np.ndarray, *, n_boot: int, rng: np.random.Generator, level: float
) -> list[float]:
    """Percentile interval of candidate − champion accuracy over paired resamples of these rows (n ≥ 1)."""
    # Code 2·champion right + candidate right: the difference is (code 1 − code 2) / n in each resample.
    pairs = resampled_code_counts(champion_right * 2 + candidate_right, 4, n_boot=n_boot, rng=rng)
    return percentile_interval((pairs[:, 1] - pairs[:, 2]) / len(champion_right), level=level)


def _subgroups(
    champion_right: np.ndarray,
    candidate_right: np.ndarray,
    group_labels: dict[str, np.ndarray],
    *,
    min_group_size: int,
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per value of each sensitive feature: both accuracies, their difference and its paired interval."""
    out: dict[str, dict[str, dict[str, Any]]] = {feature: {} for feature in group_labels}
    for feature, value, mask, reason in subgroup_rows(group_labels, min_group_size=min_group_size):
        entry: dict[str, Any] = {"n": int(mask.sum()), **dict.fromkeys(_SUBGROUP_FIGURES), "reason": reason}
        if reason is None:
            champion, candidate = champion_right[mask], candidate_right[mask]
            rng = rng_for(seed, "paired accuracy", feature, value)
            entry |= {
                "accuracy_champion": float(champion.mean()),
                "accuracy_candidate": float(candidate.mean()),
                "accuracy_difference": float((candidate & ~champion).sum() - (champion & ~candidate).sum())
                / len(champion),
                "accuracy_difference_ci": _accuracy_difference_ci(
                    champion, candidate, n_boot=n_boot, rng=rng, level=level
                ),
            }
        out[feature][value] = entry
    return out


_SUBGROUP_FIGURES = ("accuracy_champion", "accuracy_candidate", "accuracy_difference", "accuracy_difference_ci")


def minimum_detectable_effect(*, n: int, discordance_rate: float, alpha: float, power: float) -> float | None:
    """Smallest accuracy difference (a fraction) that `n` paired rows detect (module docstring).

    None when even a difference of 1 (one model always right, the other never)
    would not reach `power`: too few rows to detect anything.
    """
    from scipy.optimize import brentq
    from scipy.stats import norm

    if n < 1:
        return None
    z_alpha = float(norm.ppf(1 - alpha / 2))
    z_power = float(norm.ppf(power))

    def shortfall(delta: float) -> float:
        psi = max(discordance_rate, delta)
        return n * delta**2 - (z_alpha * math.sqrt(psi) + z_power * math.sqrt(max(psi - delta**2, 0.0))) ** 2

    if shortfall(1.0) <= 0:
        return None
    return float(brentq(shortfall, 1e-12, 1.0, xtol=1e-12))


def _words(
    verdict: str, *, n: int, difference: float, ci: list[float], p_value: float, mde: float | None, level: float
) -> str:
    if verdict == NOT_DISTINGUISHABLE:
        if mde is None:
            return f"not distinguishable on {n} rows (too few rows to detect any difference)"
        return (
            f"not distinguishable on {n} rows "
            f"(the smallest difference this holdout could detect is about {_points(mde)} points)"
        )
    return (
        f"{verdict}: {difference * 100:+.1f} points of accuracy on {n} rows "
        f"({level:.0%} interval {ci[0] * 100:+.1f} to {ci[1] * 100:+.1f} points; exact McNemar p = {p_value:.2g})"
    )


def _points(fraction: float) -> str:
    """Percentage points, with enough digits that a large holdout's small MDE does not read as 0.0."""
    points = fraction * 100
    return f"{points:.1f}" if points >= 1 else f"{points:.2g}"


def _empty(settings: dict[str, Any], *, features: list[str]) -> dict[str, Any]:
    """The same keys as a real comparison: nothing to compare on."""
    return {
        "n": 0,
        **dict.fromkeys(
            (
                "accuracy_champion",
                "accuracy_candidate",
                "accuracy_difference",
                "accuracy_difference_ci",
                "log_loss_champion",
                "log_loss_candidate",
                "log_loss_difference",
                "log_loss_difference_ci",
            )
        ),
        **dict.fromkeys(("both_right", "both_wrong", "champion_only_right", "candidate_only_right", "net_rows"), 0),
        "discordance_rate": None,
        "mcnemar_p": 1.0,
        "mcnemar_method": "exact: two-sided binomial test on the discordant rows, p = 0.5",
        "minimum_detectable_effect": None,
        "verdict": NOT_DISTINGUISHABLE,
        "verdict_words": "not distinguishable on 0 rows (no labelled rows to compare on)",
        "subgroups": {feature: {} for feature in features},
        **settings,
    }
