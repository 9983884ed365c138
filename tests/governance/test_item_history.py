"""The item history puts decisions first and the item's data after them, folded (issue 6, defect 14)."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from annotations.models import Dataset, Item, LabelClass, Review
from annotations.services import ReviewAnswer, review_submit
from governance.selection_words import strategy_words
from tests.conftest import login


def _reviewed_item(  # type: ignore[no-untyped-def]
    dataset, reviewer, *, reason: str = "irregular border", reason_code: str = ""
) -> Item:
    item = Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN).order_by("pk").first()
    label = LabelClass.objects.get(dataset=dataset, name="benign")
    Item.objects.filter(pk=item.pk).update(leased_to=reviewer)  # as the queue hands it out
    review_submit(
        item_id=item.pk,
        reviewer=reviewer,
        answer=ReviewAnswer(
            label=label, shown_prediction_id=item.prediction_id, reason=reason, reason_code=reason_code
        ),
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


def _reviews_table(html: str) -> str:
    start = html.index('id="reviews-title"')
    return html[html.index("<table", start) : html.index("</table>", start)]


def test_a_corrections_reason_code_has_its_own_column_in_the_datasets_words(trained_dataset, reviewer, auditor):
    codes = [{"code": "outline", "text": "Irregular outline"}, {"code": "size", "text": "Too large"}]
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=codes)
    item = _reviewed_item(trained_dataset, reviewer, reason_code="outline")
    review = Review.objects.get(item=item)

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    table = _reviews_table(html)
    headers = re.findall(r'<th scope="col">([^<]*)</th>', table)
    assert headers[headers.index("Label") + 1 : headers.index("Label") + 3] == ["Reason code", "Reason"]
    assert (
        '<td class="reason-code"><bdi>Irregular outline</bdi> <span class="muted">(<code><bdi>outline</bdi></code>)'
        in table
    )
    # Why the queue picked it, in words (the API keeps the code).
    assert f"<td>{strategy_words(review.selection_strategy)}" in table
    assert review.selection_strategy not in re.sub(r"<[^>]*>", " ", table)

    # A code the dataset no longer lists is still shown, as the code it recorded.
    Dataset.objects.filter(pk=trained_dataset.pk).update(reason_codes=codes[1:])
    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()
    assert '<td class="reason-code"><code><bdi>outline</bdi></code></td>' in _reviews_table(html)


def test_an_answer_without_a_reason_code_shows_a_dash_and_events_keep_their_action_whole(
    trained_dataset, reviewer, auditor
):
    item = _reviewed_item(trained_dataset, reviewer)

    html = login(auditor).get(reverse("governance:item_history", args=[item.pk])).content.decode()

    assert '<td class="reason-code">—</td>' in _reviews_table(html)
    # The action cell is the audit trail's (loupe.css: no break inside review.submitted; the table scrolls).
    assert re.search(r'<td class="action"><code><bdi>review\.[a-z_]+</bdi></code></td>', html)
    css = (Path(settings.BASE_DIR) / "static" / "css" / "loupe.css").read_text()
    assert ".table.audit td.action code { white-space: nowrap; overflow-wrap: normal; }" in css
