"""The change envelope's draft form: flat inputs named by clause path, to and from the clauses document.

Each input is named by the path its error is keyed by (governance/envelope_clauses.py), e.g.
`algorithms.logistic_regression.C.max`, so the validator's errors land next to their fields without a
mapping table. The form is generated from the algorithm catalogue: a new family or hyperparameter appears on
it without a template change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from governance.envelope_clauses import ACCEPTANCE, EVALUATION_SETS, LabelSources
from models_app.ml.algorithms.catalogue import catalogue


@dataclass(frozen=True)
class Input:
    name: str  # the clause path: the input's name and its error key
    label: str
    kind: str  # "number" | "bool" | "choices"
    value: Any
    error: str = ""
    choices: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class AlgorithmRow:
    name: str
    label: str
    allowed: bool
    error: str
    inputs: list[Input] = field(default_factory=list)


@dataclass(frozen=True)
class DraftForm:
    algorithms: list[AlgorithmRow]
    label_sources: str
    label_source_choices: list[tuple[str, str]]
    general: list[Input]  # evaluation sets and acceptance criteria
    change_summary: str
    errors: dict[str, str]


def clauses_from_post(post: QueryDict) -> dict[str, Any]:
    """The raw clauses document the posted form describes (validated afterwards, strings and all)."""
    known = catalogue()
    algorithms: dict[str, dict[str, Any]] = {}
    for name in post.getlist("algorithms"):
        ranges: dict[str, Any] = {}
        for hp in known[name].hyperparameters if name in known else ():
            path = f"algorithms.{name}.{hp.name}"
            if hp.kind in ("int", "float"):
                bounds = {end: post.get(f"{path}.{end}", "").strip() for end in ("min", "max")}
                bounds = {end: value for end, value in bounds.items() if value}
                if bounds:
                    ranges[hp.name] = bounds
            elif hp.kind == "bool":
                value = post.get(f"{path}.allowed", "")
                if value in ("true", "false"):
                    ranges[hp.name] = {"allowed": [value == "true"]}
            else:
                choices = post.getlist(f"{path}.choices")
                if choices:
                    ranges[hp.name] = {"choices": choices}
        algorithms[name] = ranges
    return {
        "algorithms": algorithms,
        "label_sources": post.get("label_sources", LabelSources.ANY),
        "evaluation_sets": {
            name: {"min_size": post.get(f"evaluation_sets.{name}.min_size", "").strip() or None}
            for name in EVALUATION_SETS
        },
        "acceptance": {name: post.get(f"acceptance.{name}", "").strip() or None for name in ACCEPTANCE},
    }


def draft_form(
    *, clauses: dict[str, Any] | None, change_summary: str = "", errors: dict[str, list[str]] | None = None
) -> DraftForm:
    """The form filled with `clauses` (the posted ones after an error, else the active version's, else empty)."""
    clauses = clauses or {}
    flat_errors = {key: " ".join(messages) for key, messages in (errors or {}).items()}
    allowed = clauses.get("algorithms") or {}
    rows = []
    for name, entry in catalogue().items():
        ranges = allowed.get(name) or {}
        inputs = []
        for hp in entry.hyperparameters:
            path = f"algorithms.{name}.{hp.name}"
            given = ranges.get(hp.name) or {}
            if hp.kind in ("int", "float"):
                for end in ("min", "max"):
                    inputs.append(
                        Input(
                            f"{path}.{end}",
                            f"{hp.name} {end}",
                            "number",
                            _blank(given.get(end)),
                            flat_errors.get(f"{path}.{end}", ""),
                            hint=f"catalogue {_blank(hp.minimum)} to {_blank(hp.maximum)}",
                        )
                    )
                if path in flat_errors:
                    inputs[-1] = Input(**{**inputs[-1].__dict__, "error": flat_errors[path]})
            elif hp.kind == "bool":
                value = given.get("allowed") or []
                chosen = "true" if value == [True] else "false" if value == [False] else ""
                inputs.append(Input(f"{path}.allowed", hp.name, "bool", chosen, flat_errors.get(path, "")))
            else:
                chosen = [str(c) for c in given.get("choices") or []]
                inputs.append(
                    Input(f"{path}.choices", hp.name, "choices", chosen, flat_errors.get(path, ""), hp.choices)
                )
        rows.append(AlgorithmRow(name, entry.label, name in allowed, flat_errors.get(f"algorithms.{name}", ""), inputs))
    sets = clauses.get("evaluation_sets") or {}
    acceptance = clauses.get("acceptance") or {}
    general = [
        Input(
            f"evaluation_sets.{name}.min_size",
            f"Minimum rows of {words} (empty: not required)",
            "number",
            _blank((sets.get(name) or {}).get("min_size")),
            flat_errors.get(f"evaluation_sets.{name}.min_size", "") or flat_errors.get(f"evaluation_sets.{name}", ""),
        )
        for name, words in EVALUATION_SETS.items()
    ] + [
        Input(
            f"acceptance.{name}",
            f"{words[0].upper()}{words[1:]} (empty: none)",
            "number",
            _blank(acceptance.get(name)),
            flat_errors.get(f"acceptance.{name}", ""),
        )
        for name, words in ACCEPTANCE.items()
    ]
    return DraftForm(
        algorithms=rows,
        label_sources=str(clauses.get("label_sources") or LabelSources.ANY),
        label_source_choices=list(LabelSources.choices),
        general=general,
        change_summary=change_summary,
        errors=flat_errors,
    )


def _blank(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
