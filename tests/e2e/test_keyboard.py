"""Keyboard semantics on the review card: Enter means what the focused control means."""

from __future__ import annotations

import pytest

from annotations.models import Review
from tests.e2e.browser import sign_in, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def test_enter_on_the_skip_button_skips_and_enter_on_source_only_opens_it(live_server, page, trained_dataset, reviewer):
    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")

    page.locator("#card summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#card details")).to_have_attribute("open", "")
    assert not Review.objects.exists()

    first = page.locator("#card h2 code").inner_text()
    page.keyboard.press("1")  # a label is chosen...
    page.locator("button[value=skip]").focus()
    page.keyboard.press("Enter")  # ...but Enter on Skip skips
    expect(page.locator("#card h2 code")).not_to_have_text(first)
    assert list(Review.objects.values_list("decision", flat=True)) == [Review.Decision.SKIP]

    second = page.locator("#card h2 code").inner_text()
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # from the radio: submits the label
    expect(page.locator("#card h2 code")).not_to_have_text(second)
    assert Review.objects.exclude(decision=Review.Decision.SKIP).count() == 1


def test_g_opens_the_guideline_over_the_card_and_escape_gives_the_keyboard_back(
    live_server, page, trained_dataset, reviewer, model_admin
):
    from annotations.guidelines import guideline_publish

    published = guideline_publish(
        dataset=trained_dataset, user=model_admin, text="## When unsure\n\nCall it **malignant**."
    )
    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")
    dialog = page.locator("#guideline-dialog")

    page.keyboard.press("g")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2", has_text="When unsure")).to_be_visible()
    page.keyboard.press("1")  # the dialog has the keyboard: no label is chosen behind it
    expect(page.locator("#card input[name=label]:checked")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#card input[name=label]:checked")).to_have_count(0)  # answered: the next card
    assert Review.objects.get().guideline_version == str(published.version)  # made under the version read


def test_question_mark_lists_every_key_and_escape_closes_it(live_server, page, trained_dataset, reviewer):
    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")
    keys = page.locator("#keys-dialog")

    page.keyboard.press("?")
    expect(keys).to_be_visible()
    for key in ("Enter", "S", "G", "Esc"):
        expect(keys.locator("kbd", has_text=key).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(keys).to_be_hidden()
    page.get_by_role("button", name="? all keys").click()  # and by mouse
    expect(keys).to_be_visible()


def test_r_picks_a_reason_code_arrows_change_it_f_flags_and_enter_submits(live_server, page, trained_dataset, reviewer):
    from annotations.models import Dataset

    Dataset.objects.filter(pk=trained_dataset.pk).update(
        reason_codes=[{"code": "margin", "text": "Irregular margin"}, {"code": "artefact", "text": "Artefact"}]
    )
    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")
    other = page.locator("label.choice", has_not_text="(model)").filter(has=page.locator("input[name=label]")).first
    first = page.locator("#card h2 code").inner_text()

    page.keyboard.press(other.locator("kbd").inner_text())  # a correction...
    page.keyboard.press("r")  # ...needs a reason: R picks the first, the arrow the next
    page.keyboard.press("ArrowDown")
    expect(page.locator("input[name=reason_code][value=artefact]")).to_be_checked()
    page.keyboard.press("f")
    expect(page.locator("input[name=flagged]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#card h2 code")).not_to_have_text(first)
    assert Review.objects.values_list("decision", "reason_code", "flagged").get() == ("correct", "artefact", True)
