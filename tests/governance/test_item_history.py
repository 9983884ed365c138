"""The item history puts decisions first and the item's data after them, folded (issue 6, defect 14)."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import Item, LabelClass
from annotations.services import ReviewAnswer, review_submit
from tests.conftest import login


def _reviewed_item(dataset, reviewer, *, reason: str = "irregular border") -> Item:  # type: ignore[no-untyped-def]
    item = Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk").first()
    label = LabelClass.objects.get(dataset=dataset, name="benign")
    Item.objects.filter(pk=item.pk).update(leased_to=reviewer)  # as the queue hands it out
    review_submit(
        item_id=item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(label=label, shown_prediction_id=item.prediction_id, reason=reason),
    )
    return item


def test_decisions_come_before_the_items_data(trained_dataset, reviewer, auditor):
    item = _reviewed_item(trained_dataset, reviewer)

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    order = [
        html.index(marker)
        for marker in (
            "Gold label",
            'id="reviews-title"',
            "irregular border",  # the reviewer's reason, in the reviews table
            'id="predictions-title"',
            'id="events-title"',
            'id="data-title"',
            "<bdi>radius</bdi>",  # the first feature row
        )
    ]
    assert order == sorted(order)


def test_the_items_feature_values_are_folded_away_but_all_there(trained_dataset, reviewer, auditor):
    item = _reviewed_item(trained_dataset, reviewer)

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    data = html[html.index('<details class="features">') : html.index("</details>", html.index('class="features"'))]
    assert "<summary>3 feature values</summary>" in data
    for name in ("radius", "texture", "lobes"):
        assert f'<th scope="row"><bdi>{name}</bdi></th><td><bdi>{item.values[name]}</bdi></td>' in data


def test_a_review_shows_who_when_what_they_decided_why_and_what_they_were_shown(trained_dataset, reviewer, auditor):
    item = _reviewed_item(trained_dataset, reviewer)
    shown = LabelClass.objects.get(pk=item.predicted_label_id)

    response = login(auditor).get(reverse("governance:item_history", args=[item.pk]))

    html = response.content.decode()
    row = html[
        html.index("<tbody>", html.index('id="reviews-title"')) : html.index(
            "</tbody>", html.index('id="reviews-title"')
        )
    ]
    assert "<bdi>reviewer</bdi>" in row
    assert "Corrected the prediction" in row or "Accepted the prediction" in row
    assert "<bdi>Benign</bdi>" in row and "<bdi>irregular border</bdi>" in row
    assert f"<bdi>{shown}</bdi> (" in row
    # The audit event's change is a diff, not a JSON blob.
    assert '<span class="diff-key"><bdi>label</bdi></span>: <code><bdi>benign</bdi></code>' in html
    assert "{&quot;" not in html


def test_an_item_id_with_a_right_to_left_override_is_shown_with_a_marker_on_its_history(
    trained_dataset, reviewer, auditor
):
    item = _reviewed_item(trained_dataset, reviewer, reason="looks \u202eenign")
    Item.objects.filter(pk=item.pk).update(external_id="abc\u202egpj", source_file="scan\u200b.csv")

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    assert "\u202e" not in html and "\u200b" not in html
    assert "Item abc⟨U+202E⟩gpj history" in html  # the <title>, as text
    assert (
        '<code><bdi>abc<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟨U+202E⟩</span>gpj</bdi></code>'
        in html
    )
    assert "scan" in html and "⟨U+200B⟩" in html
    assert html.count("⟨U+202E⟩") >= 3  # title, heading, the reason
