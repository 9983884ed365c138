"""The clauses of a change envelope (issue 10, point 5), and their validation against the algorithm catalogue.

An envelope version's clauses are one JSON document, validated here before the row is written and never
changed after (a new policy is a new version):

    {
      "algorithms": {                     # allowed families; each hyperparameter named here is constrained,
        "logistic_regression": {          # one not named may take any value the catalogue allows
          "C": {"min": 0.01, "max": 100},                     # int / float: a closed range
          "class_weight_balanced": {"allowed": [true]},       # bool: the values allowed
        },
        "torch_mlp": {"hidden_sizes": {"choices": ["64", "128,64"]}},   # choice: a subset
      },
      "label_sources": "double_reviewed_or_adjudicated",   # a LabelSources value
      "evaluation_sets": {"holdout": {"min_size": 200}, "out_of_time": {"min_size": null}},   # null: not required
      "acceptance": {"min_holdout_accuracy": 0.9, "max_ece": 0.05, "max_regression_points": 2.0},   # null: none
    }

Why the catalogue (models_app/ml/algorithms/catalogue.py) and not free text: an envelope that allows an
algorithm the registry does not have, or a range the training code would refuse anyway, promises nothing,
so both are errors that name the algorithm or hyperparameter. Errors are keyed by the clause's path
("algorithms.logistic_regression.C.max"), which is also the draft form's input name, so each error is shown
next to the field it is about.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from annotations.models import GoldLabel
from models_app.ml.algorithms.base import Hyperparameter
from models_app.ml.algorithms.catalogue import catalogue


class LabelSources(models.TextChoices):
    """Which gold labels a training snapshot may contain, by how GoldLabel.origin says they were derived."""

    ANY = "any", "Any gold label (imported, single review, consensus, adjudication)"
    REVIEWED = "reviewed", "Reviewed labels only (single review, consensus or adjudication; no imported label)"
    DOUBLE_REVIEWED_OR_ADJUDICATED = (
        "double_reviewed_or_adjudicated",
        "Double-reviewed or adjudicated only (consensus of several reviewers, or an adjudicator's decision)",
    )
    ADJUDICATED = "adjudicated", "Adjudicated only"


ALLOWED_ORIGINS: dict[str, frozenset[str]] = {
    LabelSources.ANY: frozenset(GoldLabel.Origin.values),
    LabelSources.REVIEWED: frozenset(
        {GoldLabel.Origin.REVIEW, GoldLabel.Origin.CONSENSUS, GoldLabel.Origin.ADJUDICATION}
    ),
    LabelSources.DOUBLE_REVIEWED_OR_ADJUDICATED: frozenset({GoldLabel.Origin.CONSENSUS, GoldLabel.Origin.ADJUDICATION}),
    LabelSources.ADJUDICATED: frozenset({GoldLabel.Origin.ADJUDICATION}),
}

EVALUATION_SETS = {
    "holdout": "the sequestered holdout",
    "out_of_time": "the out-of-time set (corrections made after both models froze their data)",
}
ACCEPTANCE = {
    "min_holdout_accuracy": "minimum holdout accuracy (0–1)",
    "max_ece": "maximum expected calibration error (0–1)",
    "max_regression_points": "maximum accuracy regression against the champion (points, 0–100)",
}
TOP_LEVEL = ("algorithms", "label_sources", "evaluation_sets", "acceptance")


def envelope_clauses_validate(raw: Any) -> dict[str, Any]:
    """The clauses in canonical form, or ValidationError keyed by clause path naming what is wrong.

    Checks: every algorithm and hyperparameter exists in the catalogue; ranges are of the declared kind and
    lie within the declared range; the label source, evaluation sets and acceptance criteria are known and in
    range. Nothing unknown is silently dropped: an unknown key is an error too.
    """
    errors: dict[str, str] = {}
    if not isinstance(raw, dict):
        raise ValidationError({"clauses": "The clauses must be a JSON object."})
    for key in set(raw) - set(TOP_LEVEL):
        errors[key] = f"Unknown clause {key!r}; the clauses are {', '.join(TOP_LEVEL)}."
    clean: dict[str, Any] = {
        "algorithms": _algorithms(raw.get("algorithms"), errors),
        "label_sources": _label_sources(raw.get("label_sources", LabelSources.ANY), errors),
        "evaluation_sets": _evaluation_sets(raw.get("evaluation_sets") or {}, errors),
        "acceptance": _acceptance(raw.get("acceptance") or {}, errors),
    }
    if errors:
        raise ValidationError(errors)
    return clean


def _algorithms(raw: Any, errors: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    known = catalogue()
    if not isinstance(raw, dict) or not raw:
        errors["algorithms"] = "Allow at least one algorithm."
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, ranges in sorted(raw.items()):
        where = f"algorithms.{name}"
        if name not in known:
            errors[where] = f"Unknown algorithm {name!r}; the catalogue has {', '.join(known)}."
            continue
        if ranges is None:
            ranges = {}
        if not isinstance(ranges, dict):
            errors[where] = f"The hyperparameter ranges of {name} must be an object."
            continue
        declared = {h.name: h for h in known[name].hyperparameters}
        out[name] = {}
        for hp_name, constraint in sorted(ranges.items()):
            hp_where = f"{where}.{hp_name}"
            if hp_name not in declared:
                errors[hp_where] = (
                    f"Unknown hyperparameter {hp_name!r} of {name}; it declares {', '.join(declared) or 'none'}."
                )
                continue
            checked = _constraint(declared[hp_name], constraint, name, hp_where, errors)
            if checked is not None:
                out[name][hp_name] = checked
    return out


def _constraint(
    hp: Hyperparameter, raw: Any, algorithm: str, where: str, errors: dict[str, str]
) -> dict[str, Any] | None:
    what = f"{hp.name} of {algorithm}"
    if not isinstance(raw, dict):
        errors[where] = f"The constraint on {what} must be an object."
        return None
    if hp.kind in ("int", "float"):
        extra = set(raw) - {"min", "max"}
        if extra:
            errors[where] = f"A numeric hyperparameter ({what}) takes min and max, not {', '.join(sorted(extra))}."
            return None
        bounds: dict[str, float | int] = {}
        for end in ("min", "max"):
            value = raw.get(end)
            if value is None:
                continue  # open at this end: the catalogue's bound applies
            number = _number(value, integer=hp.kind == "int")
            if number is None:
                kind = "a whole number" if hp.kind == "int" else "a number"
                errors[f"{where}.{end}"] = f"The {end} of {what} must be {kind}, not {value!r}."
                continue
            if hp.minimum is not None and number < hp.minimum:
                errors[f"{where}.{end}"] = f"{number:g} is below the catalogue's minimum {hp.minimum:g} for {what}."
            elif hp.maximum is not None and number > hp.maximum:
                errors[f"{where}.{end}"] = f"{number:g} is above the catalogue's maximum {hp.maximum:g} for {what}."
            else:
                bounds[end] = number
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            errors[f"{where}.max"] = f"The max of {what} ({bounds['max']:g}) is below its min ({bounds['min']:g})."
        return bounds or None
    if hp.kind == "bool":
        allowed = raw.get("allowed")
        if set(raw) - {"allowed"} or not isinstance(allowed, list) or not allowed:
            errors[where] = f"{what} is true/false: give the allowed values as a non-empty list."
            return None
        if any(not isinstance(v, bool) for v in allowed):
            errors[where] = f"{what} is true/false; {allowed!r} holds something else."
            return None
        return {"allowed": sorted(set(allowed))}
    choices = raw.get("choices")
    if set(raw) - {"choices"} or not isinstance(choices, list) or not choices:
        errors[where] = f"{what} is a choice: give the allowed choices as a non-empty list."
        return None
    unknown = [c for c in choices if str(c) not in hp.choices]
    if unknown:
        errors[where] = (
            f"{', '.join(map(repr, unknown))} not among the catalogue's choices for {what} ({', '.join(hp.choices)})."
        )
        return None
    return {"choices": [c for c in hp.choices if c in {str(x) for x in choices}]}


def _number(value: Any, *, integer: bool) -> float | int | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if integer:
        return int(number) if number.is_integer() else None
    return number


def _label_sources(raw: Any, errors: dict[str, str]) -> str:
    if raw not in LabelSources.values:
        errors["label_sources"] = f"Unknown label source {raw!r}; choose one of {', '.join(LabelSources.values)}."
        return LabelSources.ANY
    return str(raw)


def _evaluation_sets(raw: Any, errors: dict[str, str]) -> dict[str, dict[str, int | None]]:
    if not isinstance(raw, dict):
        errors["evaluation_sets"] = "The evaluation sets must be an object."
        return {}
    out: dict[str, dict[str, int | None]] = {}
    for name in set(raw) - set(EVALUATION_SETS):
        errors[f"evaluation_sets.{name}"] = (
            f"Unknown evaluation set {name!r}; the sets are {', '.join(EVALUATION_SETS)}."
        )
    for name in EVALUATION_SETS:
        given = raw.get(name) or {}
        value = given.get("min_size") if isinstance(given, dict) else given
        if value is None or value == "":
            out[name] = {"min_size": None}
            continue
        number = _number(value, integer=True)
        if number is None or number < 1:
            errors[f"evaluation_sets.{name}.min_size"] = (
                f"The minimum size of {EVALUATION_SETS[name]} must be a whole number of rows, at least 1 "
                f"(or empty: not required), not {value!r}."
            )
            continue
        out[name] = {"min_size": int(number)}
    return out


def _acceptance(raw: Any, errors: dict[str, str]) -> dict[str, float | None]:
    if not isinstance(raw, dict):
        errors["acceptance"] = "The acceptance criteria must be an object."
        return {}
    for name in set(raw) - set(ACCEPTANCE):
        errors[f"acceptance.{name}"] = f"Unknown acceptance criterion {name!r}; they are {', '.join(ACCEPTANCE)}."
    out: dict[str, float | None] = {}
    for name, words in ACCEPTANCE.items():
        value = raw.get(name)
        if value is None or value == "":
            out[name] = None
            continue
        number = _number(value, integer=False)
        top = 100 if name == "max_regression_points" else 1
        if number is None or not 0 <= number <= top:
            errors[f"acceptance.{name}"] = f"The {words} must be between 0 and {top}, or empty for none; got {value!r}."
            continue
        out[name] = number
    return out
