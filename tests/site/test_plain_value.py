"""The plain_value filter: an envelope clause's expected and actual values in words, not raw JSON."""

from __future__ import annotations

from annotations.templatetags.loupe_format import plain_value


def test_numbers_are_rounded_and_structures_read_as_words():
    assert plain_value(0.9707602339181286) == "0.971"
    assert plain_value(2.0) == "2"
    assert plain_value({"import": 24, "review": 3}) == "import: 24; review: 3"
    assert (
        plain_value(["logistic_regression", "hist_gradient_boosting"]) == "logistic_regression, hist_gradient_boosting"
    )
    assert plain_value({"C": [0.01, 10.0]}) == "C: 0.01, 10"


def test_nothing_and_booleans_are_words_too():
    assert plain_value(None) == plain_value("") == plain_value([]) == plain_value({}) == "—"
    assert (plain_value(True), plain_value(False)) == ("yes", "no")
    assert plain_value(float("nan")) == "—"
