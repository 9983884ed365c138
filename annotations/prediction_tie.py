"""Is the model's prediction a tie? One rule for the review card and for the answer it records.

The card shows class probabilities in whole percents. When the top two are
closer than one percentage point they read the same, and the card says the
model is undecided between them instead of naming the argmax (which would just
be whichever class came first). The answer must then be judged the same way:
nothing was shown as the model's label, so choosing either class is a plain
label (Review.Decision.LABEL), not an "accept" of one and a "correct" of the
other (which would demand a reason code for overruling a choice the model never
made). The card (annotations/views.py) and review_submit (annotations/services.py,
which the page and the REST API both go through) call `prediction_tie` on the
item's stored probabilities (Item.predicted_probabilities), so they cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

# Two top probabilities closer than this read the same on the card (whole percents): a tie.
TIE_MARGIN = 0.01


def prediction_tie(probabilities: Mapping[str, object] | None) -> tuple[tuple[str, float], tuple[str, float]] | None:
    """The top two (class name, probability) pairs when the model cannot choose between them, else None.

    `probabilities` is an item's predicted_probabilities (class name → probability), or None
    when it has no prediction. Non-numeric entries are ignored. Equal probabilities keep the
    mapping's order.
    """
    if not probabilities:
        return None
    ranked = sorted(
        (
            (name, float(p))
            for name, p in probabilities.items()
            if isinstance(p, int | float) and not isinstance(p, bool)
        ),
        key=lambda pair: -pair[1],
    )
    if len(ranked) >= 2 and ranked[0][1] - ranked[1][1] < TIE_MARGIN:
        return ranked[0], ranked[1]
    return None
