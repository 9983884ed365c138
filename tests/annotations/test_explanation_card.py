"""The card and the API show the prediction's per-feature explanation exactly as stored (issue 8, point 6)."""

from __future__ import annotations

import re

from django.template.loader import render_to_string
from django.urls import reverse

from annotations.models import Item
from annotations.queue import queue_next_item
from tests.helpers import login

ODD = '<img src=x onerror="alert(1)">'


def _record(cls: str = "malignant", other: str = "benign") -> dict:
    return {
        "method": "linear",
        "calibrated": True,
        "class": cls,
        "toward": f"pushes toward {cls}",
        "away": f"pushes toward {other}",
        "contributors": [
            ["radius", 18.3, 2.5, "toward"],
            [ODD, "red", -1.25, "away"],
            ["lobes", 3, 0.5, "toward"],
            ["texture", None, 0.0, "none"],
        ],
    }


def _hold(dataset, reviewer, explanation: dict | None, label: str = "malignant") -> Item:
    item = queue_next_item(dataset=dataset, reviewer=reviewer).item
    Item.objects.filter(pk=item.pk).update(
        predicted_label=dataset.label_classes.get(name=label),
        predicted_probabilities={"malignant": 0.8, "benign": 0.2} if label == "malignant" else {"benign": 0.8},
        predicted_confidence=0.8,
        prediction_explanation=explanation,
    )
    return Item.objects.get(pk=item.pk)


def _explanation(html: str) -> str:
    found = re.search(r'<figure class="explanation".*?</figure>', html, re.S)
    assert found, html
    return found.group(0)


def _card(client, dataset) -> str:
    response = client.get(reverse("annotations:review", args=[dataset.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_card_lists_the_contributors_largest_first_with_value_unit_and_direction_in_words(
    trained_dataset, reviewer
):
    _hold(trained_dataset, reviewer, _record())

    figure = _explanation(_card(login(reviewer), trained_dataset))

    items = re.findall(r"<li class=\"explain-(\w+)\">(.*?)</li>", figure, re.S)
    assert [direction for direction, _ in items] == ["toward", "away", "toward", "none"]
    texts = [re.sub(r"<[^>]+>|\s+", " ", body) for _, body in items]
    assert "radius" in texts[0] and "18.3 mm" in texts[0] and "pushes toward malignant" in texts[0]
    assert "red" in texts[1] and "pushes toward benign" in texts[1] and "−1.25" not in texts[1]
    assert "-1.25" in texts[1]
    assert "lobes" in texts[2] and "3" in texts[2]
    assert "missing" in texts[3] and "grey levels" not in texts[3] and "no effect" in texts[3]
    # Diverging bars drawn with SVG attributes (the CSP forbids style=): toward right of the axis, away left.
    assert '<rect class="explain-fill" x="50" width="50.0"' in items[0][1]
    assert '<rect class="explain-fill" x="25.0" width="25.0"' in items[1][1]
    assert "style=" not in figure
    assert "the feature&#x27;s share of the model&#x27;s log-odds for malignant" in figure
    assert "under the probability calibration" in figure


def test_feature_names_are_escaped_in_the_chart_and_in_the_screen_reader_summary(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, _record())

    figure = _explanation(_card(login(reviewer), trained_dataset))

    assert ODD not in figure
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in figure
    summary = re.search(r'<p class="sr-only">(.*?)</p>', figure, re.S).group(1)
    assert summary.startswith(
        "Features that weigh most in the model&#x27;s log-odds for malignant, largest first: "
        "radius is 18.3 mm, pushes toward malignant (+2.50)"
    )
    assert summary.index("radius") < summary.index("&lt;img") < summary.index("lobes") < summary.index("texture")
    assert "<img" not in summary
    # The drawing is for the eye; the summary says it all to a screen reader.
    assert '<ol class="explain-bars" aria-hidden="true">' in figure


def test_an_explanation_for_another_label_than_the_one_shown_is_not_shown(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, _record(), label="benign")

    html = _card(login(reviewer), trained_dataset)

    assert 'class="explanation"' not in html


def test_an_item_without_an_explanation_shows_none(trained_dataset, reviewer):
    _hold(trained_dataset, reviewer, None)

    html = _card(login(reviewer), trained_dataset)

    assert 'class="explanation"' not in html
    assert "predicts" in html


def test_the_include_renders_nothing_when_the_prediction_is_hidden(trained_dataset, reviewer):
    item = _hold(trained_dataset, reviewer, _record())

    shown = render_to_string("annotations/includes/explanation.html", {"item": item})
    hidden = render_to_string("annotations/includes/explanation.html", {"item": item, "prediction_hidden": True})

    assert 'class="explanation"' in shown
    assert hidden.strip() == ""


def test_the_card_shows_what_the_champion_stored_for_the_item(trained_dataset, reviewer):
    item = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    stored = Item.objects.get(pk=item.pk).prediction_explanation
    assert stored is not None and stored["class"] == item.predicted_label.name

    figure = _explanation(_card(login(reviewer), trained_dataset))

    features = re.findall(r'<span class="explain-feature"><bdi>(.*?)</bdi>', figure)
    assert features == [feature for feature, _value, _contribution, _direction in stored["contributors"]]
    assert f"{stored['contributors'][0][2]:+.2f}" in figure


def test_the_next_item_api_returns_the_stored_explanation(trained_dataset, reviewer):
    response = login(reviewer).get(f"/api/datasets/{trained_dataset.pk}/next-item/")

    assert response.status_code == 200
    item = response.json()["item"]
    stored = Item.objects.get(pk=item["id"]).prediction_explanation
    assert stored is not None
    assert item["explanation"] == stored
    assert item["explanation"]["class"] == item["predicted_label"]


def test_each_method_says_in_words_what_its_numbers_measure(trained_dataset, reviewer):
    client = login(reviewer)
    about = {}
    for method in ("linear", "tree-path", "replacement"):
        _hold(trained_dataset, reviewer, {**_record(), "method": method, "calibrated": False})
        about[method] = re.search(r'<figcaption class="muted">(.*?)</figcaption>', _card(client, trained_dataset), re.S)
    assert "coefficient times" in about["linear"].group(1)
    assert "path through each tree" in about["tree-path"].group(1)
    assert "set to its training mean" in about["replacement"].group(1)
