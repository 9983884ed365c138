"""Codes in words on the governance pages (datasheet, model card, item history, promotion): the JSON and the API
keep the codes, a person reads words."""

from __future__ import annotations

from typing import Any

from django import template

from governance.selection_words import strategy_words as _strategy_words

register = template.Library()

NOT_JUDGED_PREFIX = "not judged: "  # governance/gates.py starts a not-judged gate's detail with it


@register.filter
def strategy_words(code: str | None) -> str:
    """A review's selection reason (audit_slice, least_confidence, ...) in words (governance/selection_words.py)."""
    return _strategy_words(code)


@register.filter
def reason_code_text(code: str | None, dataset: Any) -> str:
    """The dataset's text for a correction's reason code ("" when the dataset no longer lists the code)."""
    if not code:
        return ""
    for entry in getattr(dataset, "reason_codes", None) or []:
        if isinstance(entry, dict) and entry.get("code") == code:
            return str(entry.get("text") or "")
    return ""


@register.filter
def gate_rows(gates: list[dict[str, Any]], version: Any) -> list[dict[str, Any]]:
    """The promotion page's gate rows (governance/gates.py's results): each with its result once, in a word, the
    evidence without repeating it, whether it blocks an ordinary approval, and for a subgroup gate the subgroup's
    holdout rows (n).

    The n comes from the version's holdout evaluation, stored with the version at registration (the gate's rows are
    that holdout's, against whichever champion), matched by the name gates.py gives a subgroup gate; a gate
    result that carries its own "n" keeps it.
    """
    subgroups = ((getattr(version, "metrics", None) or {}).get("holdout") or {}).get("subgroups") or {}
    sizes = {
        f"subgroup {feature} = {value}": figures.get("n")
        for feature, groups in subgroups.items()
        for value, figures in (groups or {}).items()
        if isinstance(figures, dict)
    }
    rows = []
    for gate in gates:
        passed, judged = bool(gate.get("passed")), gate.get("judged", True) is not False
        evidence = str(gate.get("detail") or "")
        if not passed:
            result = "failed"
        elif judged:
            result = "passed"
        else:
            result = "not judged"
            evidence = evidence.removeprefix(NOT_JUDGED_PREFIX)
        rows.append(
            {
                **gate,
                "result": result,
                "evidence": evidence,
                "n": gate.get("n", sizes.get(str(gate.get("gate")))),
                "blocks": not passed,
            }
        )
    return rows
