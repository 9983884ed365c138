"""Layout on a laptop and on a phone (defect 12).

- With the demo's 30 features the review card fits a 1366x768 laptop screen and its Submit
  button is on screen without scrolling; on a 390x844 phone the answer panel sticks to the
  bottom of the screen, so Submit is on screen at first and after scrolling through the data.
- No page of the loop is wider than a 390 px phone (wide tables scroll in their own region).
- A feature's description is reached with Tab and shown as text, not only as a tooltip.

Screenshots of the card go to $LOUPE_UI_SHOTS (default /tmp/ui-shots) for a human to look at.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from annotations import demo_data
from annotations.models import Dataset, ImportBatch, Item
from governance.models import PromotionRequest
from models_app.models import TrainingRun
from tests.e2e.browser import sign_in, sign_out, sync_api
from tests.helpers import PASSWORD

expect = sync_api().expect
pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("LOUPE_UI_SHOTS", "/tmp/ui-shots"))
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# Elements that stick out past the right edge of the screen, outside any region that scrolls them.
OVERFLOWING = """
(width) => {
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right <= width + 0.5 || box.width === 0) continue;
    let clipped = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) { clipped = true; break; }
    }
    if (!clipped) out.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(box.right)}`);
  }
  return out.slice(0, 8);
}
"""


@pytest.fixture
def demo_dataset(settings, tmp_path) -> Dataset:
    """The demo as `make demo` loads it: the breast-cancer data (30 features), a champion, one user per role."""
    settings.VAR_DIR = tmp_path  # the demo's credentials file
    call_command("seed_demo", stdout=io.StringIO())
    from django.contrib.auth.models import User

    reviewer = User.objects.get(username="reviewer1")
    reviewer.set_password(PASSWORD)
    reviewer.save()
    return Dataset.objects.get(slug=demo_data.DATASET_SLUG)


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _in_viewport(page: Any, locator: Any) -> tuple[bool, dict]:
    box = locator.bounding_box()
    size = page.viewport_size
    inside = (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )
    return inside, box


def test_the_card_with_30_features_keeps_submit_on_screen_on_a_laptop_and_a_phone(live_server, page, demo_dataset):
    dataset = demo_dataset
    assert dataset.features.count() == 30
    sign_in(page, live_server.url, "reviewer1")
    submit = page.locator("#card button[value=submit]")

    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/review/")
    expect(page.locator("#card table.features tbody tr")).to_have_count(30)
    _shot(page, "review-card-1366x768")
    assert page.evaluate("window.scrollY") == 0
    inside, box = _in_viewport(page, submit)
    assert inside, f"Submit at {box} is not on a 1366x768 screen without scrolling"
    card = page.locator("#card").bounding_box()
    assert card["y"] + card["height"] <= LAPTOP["height"], f"the card ends at {card['y'] + card['height']} px"
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/review/")
    _shot(page, "review-card-390x844")
    assert page.evaluate("window.scrollY") == 0
    inside, box = _in_viewport(page, submit)
    assert inside, f"Submit at {box} is not on a 390x844 screen without scrolling"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.evaluate(
        OVERFLOWING, PHONE["width"]
    )
    # Halfway through the data the answer panel is still there.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    _shot(page, "review-card-390x844-scrolled")
    inside, box = _in_viewport(page, submit)
    assert inside, f"Submit at {box} left the screen while scrolling through the features"
    # ... and every feature row can be scrolled clear of it (the panel does not hide the last one).
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    last_row = page.locator("#card table.features tbody tr").last.bounding_box()
    form = page.locator("#card form.review-form").bounding_box()
    assert last_row["y"] + last_row["height"] <= form["y"] + 1


def test_tab_reaches_a_feature_description_and_it_is_shown_as_text(live_server, page, demo_dataset):
    dataset = demo_dataset
    sign_in(page, live_server.url, "reviewer1")
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/review/")
    expect(page.locator("#card .legend")).to_contain_text("Normal range")  # the legend is on the card, as text

    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('.feature-desc summary')"):
            break
    else:
        pytest.fail("40 presses of Tab never reached a feature's description")
    name = page.evaluate("document.activeElement.textContent.trim()")
    page.keyboard.press("Enter")
    feature = dataset.features.get(name=name)
    description = page.locator("#card .feature-desc[open] p")
    expect(description).to_have_text(feature.description)
    expect(description).to_be_visible()
    _shot(page, "review-card-1366x768-description-open")


def test_no_page_of_the_loop_is_wider_than_a_390px_phone(  # ~15 s
    live_server, page, trained_dataset, reviewer, model_admin, model_admin2, auditor
):
    dataset = trained_dataset
    base = live_server.url
    ds = f"{base}/datasets/{dataset.pk}"
    page.set_viewport_size(PHONE)
    too_wide: dict[str, Any] = {}

    def check(where: str, url: str | None = None) -> None:
        if url is not None:
            response = page.goto(url)
            assert response is not None and response.ok, f"{where}: {url} answered {response and response.status}"
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[where] = (width, page.evaluate(OVERFLOWING, PHONE["width"]))

    check("login", f"{base}/login/")
    sign_in(page, base, "reviewer")
    check("home")
    check("dataset overview", f"{ds}/")
    check("review card", f"{ds}/review/")
    reviewed = page.locator("#card h2 code").inner_text()
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # one review, so the item history below has a reviews table
    expect(page.locator("#card h2 code")).not_to_have_text(reviewed)
    check("review card after a submit")
    sign_out(page)

    sign_in(page, base, "admin1")
    check("import page", f"{ds}/import/")
    batch = ImportBatch.objects.filter(dataset=dataset).order_by("pk").first()
    check("import batch detail", f"{ds}/imports/{batch.pk}/")
    check("models overview", f"{base}/models/datasets/{dataset.pk}/")
    run = TrainingRun.objects.filter(dataset=dataset).order_by("-pk").first()
    check("run detail", f"{base}/models/runs/{run.pk}/")
    check("promotions list", f"{base}/governance/datasets/{dataset.pk}/promotions/")
    promotion = PromotionRequest.objects.filter(model_version__dataset=dataset).order_by("pk").first()
    check("promotion detail", f"{base}/governance/promotions/{promotion.pk}/")
    sign_out(page)

    sign_in(page, base, "auditor")
    check("audit list", f"{base}/governance/audit/")
    check("audit verify", f"{base}/governance/audit/verify/")
    item = Item.objects.get(dataset=dataset, external_id=reviewed)
    check("item history", f"{base}/governance/audit/items/{item.pk}/")

    assert not too_wide, "pages wider than a 390 px screen (scrollWidth, what sticks out):\n" + "\n".join(
        f"{where}: {width}px {what}" for where, (width, what) in too_wide.items()
    )
