"""The card's view of a stored explanation (Item.prediction_explanation): what to draw, nothing computed anew.

The stored JSON (models_app/explanations.py) already holds every word and
number the card shows; this only picks the display form of each value, the
bar geometry, and the sentence a screen reader hears. Anything malformed or
stale shows nothing rather than a wrong reason.
"""

from __future__ import annotations

from typing import Any

from django import template

from workflow_site.invisible_chars import reveal as reveal_plain

register = template.Library()

_DIRECTIONS = ("toward", "away", "none")


@register.simple_tag
def item_explanation(item: Any, rows: Any = None) -> dict[str, Any] | None:
    """{class, about, toward, away, contributors: [{feature, value, unit, contribution, direction, words, x, width}],
    summary} for the card, or None when the item has no explanation for the label it shows.

    `rows` are the card's feature rows (for units); optional.
    """
    stored = getattr(item, "prediction_explanation", None)
    label = getattr(item, "predicted_label", None)
    if not isinstance(stored, dict) or label is None or stored.get("class") != label.name:
        return None
    # Stored as [feature, value, contribution, direction] (models_app/explanations.py).
    contributors = [
        dict(zip(("feature", "value", "contribution", "direction"), c, strict=True))
        for c in stored.get("contributors") or []
        if _well_formed(c)
    ]
    if not contributors:
        return None
    units = {
        row["feature"].name: row["feature"].unit for row in rows or () if isinstance(row, dict) and "feature" in row
    }
    tokens = stored.get("kind") == "tokens"  # a text model: each contributor is a word of the note
    largest = max(abs(c["contribution"]) for c in contributors) or 1.0
    words = {"toward": stored.get("toward", ""), "away": stored.get("away", ""), "none": "no effect"}
    shown = []
    for c in contributors:
        # A diverging bar around the middle: toward the predicted class to the right, away to the left.
        width = round(50 * abs(c["contribution"]) / largest, 1)
        shown.append(
            {
                "feature": f"“{c['feature']}”" if tokens else c["feature"],
                "value": "" if tokens else _display(c["value"]),
                "unit": units.get(c["feature"], "") if c.get("value") is not None and not tokens else "",
                "contribution": c["contribution"],
                "direction": c["direction"],
                "words": words[c["direction"]],
                "x": 50 if c["direction"] == "toward" else round(50 - width, 1),
                "width": width,
            }
        )
    if tokens:
        summary = f"Words that weigh most in the model's log-odds for {stored['class']}, largest first: " + "; ".join(
            f"{reveal_plain(c['feature'])} {c['words']} ({c['contribution']:+.2f})" for c in shown
        )
    else:
        summary = (
            f"Features that weigh most in the model's log-odds for {stored['class']}, largest first: "
            + "; ".join(
                f"{reveal_plain(c['feature'])} is {c['value']}{' ' + c['unit'] if c['unit'] else ''}, "
                f"{c['words']} ({c['contribution']:+.2f})"
                for c in shown
            )
        )
    return {
        **{k: stored.get(k, "") for k in ("class", "toward", "away")},
        "what": "Words" if tokens else "Features",
        "about": _about(stored),
        "contributors": shown,
        "summary": summary + ".",
    }


def _about(stored: dict[str, Any]) -> str:
    """What the numbers measure, in words, for the stored method (models_app/ml/explain.py)."""
    name = stored["class"]
    if stored.get("kind") == "tokens":
        if stored.get("method") == "occlusion":
            return f"Each number is how much the model's log-odds for {name} drop without that word in the note."
        return (
            f"Each number is the word's share of the model's log-odds for {name}: its coefficient times its "
            "TF-IDF weight in this note."
        )
    if stored.get("method") == "linear":
        about = (
            f"Each number is the feature's share of the model's log-odds for {name}: its coefficient times "
            "the value's distance from the training mean in standard deviations (a category: its coefficient)."
        )
        if stored.get("calibrated"):
            about += " Computed on the logistic regression under the probability calibration."
        return about
    if stored.get("method") == "tree-path":
        return (
            f"Each number is the feature's share of the model's log-odds for {name}: at every split on it along "
            "the item's path through each tree, how much the tree's estimate moved. The numbers of all features "
            "add up to the log-odds less the trees' starting point."
        )
    return (
        f"Each number is how much the model's log-odds for {name} drop when the feature is set to its "
        "training mean (a category: to unknown), everything else unchanged."
    )


def _well_formed(c: Any) -> bool:
    return (
        isinstance(c, list)
        and len(c) == 4
        and isinstance(c[0], str)
        and isinstance(c[2], int | float)
        and not isinstance(c[2], bool)
        and c[3] in _DIRECTIONS
    )


def _display(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
