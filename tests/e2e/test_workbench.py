"""The review workbench by keyboard only (issue 8): blind item, undo, reason code, guideline and key
overlays, "uncertain"; an adjudicator settles the disagreement; the agreement page shows the pair."""

from __future__ import annotations

import pytest

from annotations.guidelines import guideline_publish
from annotations.models import Dataset, GoldLabel, Item, LabelClass, Review
from annotations.queue import queue_next_item
from annotations.services import ReviewAnswer, review_submit
from tests.e2e.browser import sign_in, sign_out, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def _press_other_label(page) -> None:  # type: ignore[no-untyped-def]
    """Pick, by its number key, a label that is not the model's."""
    other = page.locator("#card label.choice", has_not_text="(model)").filter(has=page.locator("input[name=label]"))
    page.keyboard.press(other.first.locator("kbd").inner_text())


def _accept(page) -> None:  # type: ignore[no-untyped-def]
    """Pick the model's label by its number key, and submit."""
    page.keyboard.press(page.locator("#card label.choice", has_text="(model)").first.locator("kbd").inner_text())
    page.keyboard.press("Enter")


def _next_card(page, before: str) -> str:  # type: ignore[no-untyped-def]
    expect(page.locator("#card h2 code")).not_to_have_text(before)
    return page.locator("#card h2 code").inner_text()


def test_a_reviewer_works_ten_items_by_keyboard_and_an_adjudicator_settles_a_disagreement(
    live_server, page, trained_dataset, reviewer, reviewer2, adjudicator, model_admin, queue_draws
):
    Dataset.objects.filter(pk=trained_dataset.pk).update(
        overlap=2,
        blind_percent=50,
        reason_codes=[{"code": "margin", "text": "Irregular margin"}, {"code": "artefact", "text": "Artefact"}],
    )
    guideline_publish(dataset=trained_dataset, user=model_admin, text="## When unsure\n\nSay **uncertain**.")
    # The first card is served blind (its blind draw fires); every later draw misses (no blind, no slice).
    draws = iter([0.0])
    queue_draws.side_effect = lambda: next(draws, 0.99)

    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")

    # 1. Blind: no prediction until answered; then revealed, and revised.
    expect(page.locator("#card .prediction h3")).to_have_text("Blind review")
    expect(page.locator("#card", has_text="(model)")).to_have_count(0)
    current = page.locator("#card h2 code").inner_text()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#card h2")).to_contain_text("the model's prediction")
    expect(page.locator("#card")).to_contain_text("(your answer)")
    model = page.locator("#card label.choice", has_text="(model)").first
    your = page.locator("#card label.choice", has_text="(your answer)").first
    if model.inner_text() == your.inner_text():  # agreed blind: revise to the other label, with a reason
        _press_other_label(page)
        page.keyboard.press("r")
    else:  # disagreed blind: take the model's label now
        page.keyboard.press(model.locator("kbd").inner_text())
    page.keyboard.press("Enter")
    current = _next_card(page, current)
    blind = Review.objects.get(mode="blind")
    assert Review.objects.filter(supersedes=blind, mode="revealed").exists()

    # 2. The guideline and the key list, each opened and closed by keyboard.
    page.keyboard.press("g")
    expect(page.locator("#guideline-dialog")).to_be_visible()
    expect(page.locator("#guideline-dialog")).to_contain_text("When unsure")
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    expect(page.locator("#keys-dialog")).to_contain_text("uncertain")
    page.keyboard.press("Escape")
    expect(page.locator("#keys-dialog")).to_be_hidden()

    # 3. A correction with a reason code.
    _press_other_label(page)
    page.keyboard.press("r")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    current = _next_card(page, current)
    assert Review.objects.filter(decision="correct", reason_code="artefact").count() == 1

    # 4. An answer, then undo (Z): the same item comes back, and is answered again.
    _accept(page)
    answered = current
    current = _next_card(page, current)
    page.keyboard.press("z")
    expect(page.locator("#card h2 code")).to_have_text(answered)
    assert Review.objects.filter(decision="withdrawn").count() == 1
    _accept(page)
    current = _next_card(page, answered)

    # 5. "Uncertain" (U), then plain answers up to ten items.
    page.keyboard.press("u")
    current = _next_card(page, current)
    for _ in range(6):
        _accept(page)
        current = _next_card(page, current)
    answered_items = set(
        Review.objects.filter(reviewer=reviewer).exclude(decision="withdrawn").values_list("item_id", flat=True)
    )
    assert len(answered_items) == 10
    sign_out(page)

    # A second reviewer answers the same ten items (overlap 2), disagreeing on one.
    labels = list(LabelClass.objects.filter(dataset=trained_dataset).order_by("position"))
    for n in range(10):
        queued = queue_next_item(dataset=Dataset.objects.get(pk=trained_dataset.pk), reviewer=reviewer2)
        assert queued.item.pk in answered_items
        mine = Review.objects.filter(item=queued.item, reviewer=reviewer).latest("created_at")
        label = mine.label if mine.label_id else labels[0]
        if n == 0 and mine.label_id:
            label = next(lc for lc in labels if lc.pk != mine.label_id)
        review_submit(
            item_id=queued.item.pk,
            reviewer=reviewer2,
            answer=ReviewAnswer(label=label, shown_prediction_id=queued.item.prediction_id, reason_code="margin"),
        )
    disputed = Item.objects.filter(pk__in=answered_items, queue_state=Item.QueueState.ADJUDICATE)
    assert disputed.count() >= 2  # the "uncertain" one and the disagreement

    # The adjudicator settles each, by keyboard: number, reason, Enter.
    sign_in(page, live_server.url, "adjudicator")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/adjudicate/")
    for _ in range(disputed.count()):
        expect(page.locator("#card table.answers tbody tr")).to_have_count(2)
        deciding = page.locator("#card h2 code").inner_text()
        page.keyboard.press("1")
        expect(page.locator("#reason")).to_be_focused()  # the pick moves on to the required reason
        page.keyboard.type("read the image again")
        page.keyboard.press("Enter")
        expect(page.locator("#card h2", has_text=deciding)).to_have_count(0)  # the next one, or none left
        expect(page.locator("#card .error")).to_have_count(0)
    expect(page.get_by_role("heading", name="No disagreements to settle")).to_be_visible()
    assert GoldLabel.objects.filter(item__in=answered_items, origin="adjudication").count() >= 2
    sign_out(page)

    # The agreement page shows the pair.
    sign_in(page, live_server.url, model_admin.username)
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/agreement/")
    pairs = page.locator("section, div.table-scroll").filter(has_text="reviewer2").first
    expect(pairs).to_be_visible()
    expect(page.get_by_role("heading", name="Cohen's kappa for each pair of reviewers")).to_be_visible()
