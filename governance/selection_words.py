"""What a review's selection reason means, in words for the governance pages (datasheet, model card, item history).

A review stores the code of what put its item in front of the reviewer (annotations/queue.py;
Review.selection_strategy, one of annotations.item_search.SELECTION_STRATEGIES). Programs read the code (the
JSON and the API keep it); people read these words. The model's own strategies take their words from
annotations.models.QueueStrategy's labels, so a strategy added there is named here without a change
(tests/governance/test_model_cards.py checks that every code has words); a code nobody named (one an older
version recorded) is shown with its underscores as spaces rather than as a raw code.
"""

from __future__ import annotations

from collections.abc import Iterable

from annotations.models import QueueStrategy
from annotations.queue import STRATEGY_ADJUDICATION, STRATEGY_AUDIT_SLICE, STRATEGY_UNSCORED

NOT_REVIEWED = "not_reviewed"  # the datasheet's name for an item no review reached before the freeze

STRATEGY_WORDS: dict[str, str] = {
    STRATEGY_AUDIT_SLICE: "random audit slice",
    STRATEGY_UNSCORED: "arrival order (not yet scored by the model)",
    STRATEGY_ADJUDICATION: "adjudication of disagreeing answers",
    NOT_REVIEWED: "not reviewed before the freeze",
    # "Least confident first" → "least confident first": the order the model's strategy serves items in.
    **{strategy.value: strategy.label[0].lower() + strategy.label[1:] for strategy in QueueStrategy},
}


def strategy_words(code: str | None) -> str:
    """The words for a selection reason's code; an empty or missing one is "not recorded"."""
    if not code:
        return "not recorded"
    return STRATEGY_WORDS.get(code) or code.replace("_", " ")


def strategy_names(codes: Iterable[str]) -> dict[str, str]:
    """Code → words for `codes`: what a JSON document gives beside its codes, for a page to show."""
    return {code: strategy_words(code) for code in codes}


__all__ = ["NOT_REVIEWED", "STRATEGY_WORDS", "strategy_names", "strategy_words"]
