"""Back and Forward never bring back a card for an item the reviewer no longer holds (defect 9).

The card is swapped in place by htmx, so the review page's URL stays the same while the item
changes. A history step to that URL must ask the server (pages are no-store, htmx keeps no
history snapshot, and a page restored from the back/forward cache is reloaded by loupe.js),
which answers with the reviewer's live lease; the item just answered must not come back as
something to answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from annotations.models import Item, Review
from tests.e2e.browser import sign_in, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def _live_lease(dataset, reviewer) -> Item:
    return Item.objects.get(dataset=dataset, leased_to=reviewer)


def _assert_card_is_the_live_lease(page: Any, dataset, reviewer, answered: Item) -> None:
    live = _live_lease(dataset, reviewer)
    assert live.pk != answered.pk
    expect(page.locator("#card h2 code")).to_have_text(live.external_id)
    # Nothing on the page lets the reviewer answer the item already reviewed.
    expect(page.locator(f'#card form[action$="/review/{answered.pk}/"]')).to_have_count(0)
    expect(page.locator(f'#card form[action$="/review/{live.pk}/"]')).to_have_count(1)


def test_back_and_forward_to_the_review_page_ask_the_server_for_the_live_lease(
    live_server, page, trained_dataset, reviewer
):
    dataset = trained_dataset
    review_url = f"{live_server.url}/datasets/{dataset.pk}/review/"
    sign_in(page, live_server.url, "reviewer")
    page.get_by_role("link", name="Start reviewing").click()
    answered = _live_lease(dataset, reviewer)
    expect(page.locator("#card h2 code")).to_have_text(answered.external_id)

    page.keyboard.press("1")
    page.keyboard.press("Enter")  # reviewed: htmx swaps in the next card, the URL stays the same
    expect(page.locator("#card h2 code")).not_to_have_text(answered.external_id)
    assert Review.objects.filter(item=answered, reviewer=reviewer).exists()
    assert page.url == review_url

    page_loads: list[str] = []
    page.on("request", lambda request: request.is_navigation_request() and page_loads.append(request.url))

    # Away to the dataset overview, then Back: the review page is fetched again.
    page.get_by_role("navigation", name="Dataset").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name=dataset.name, exact=True)).to_be_visible()
    page_loads.clear()
    page.go_back()
    expect(page).to_have_url(review_url)
    _assert_card_is_the_live_lease(page, dataset, reviewer, answered)
    assert review_url in page_loads, f"Back showed the review page without asking the server: {page_loads}"

    # Back to the page before the review page, then Forward onto it: fetched again too.
    page.go_back()
    expect(page).not_to_have_url(review_url)
    page_loads.clear()
    page.go_forward()
    expect(page).to_have_url(review_url)
    _assert_card_is_the_live_lease(page, dataset, reviewer, answered)
    assert review_url in page_loads, f"Forward showed the review page without asking the server: {page_loads}"


def test_a_card_restored_from_the_back_forward_cache_is_reloaded_from_the_server(
    live_server, page, trained_dataset, reviewer
):
    """Even if a browser keeps the page in its back/forward cache (Chrome may, for no-store pages
    too), the restored, frozen card is replaced: loupe.js reloads on a persisted pageshow."""
    dataset = trained_dataset
    sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/review/")
    expect(page.locator("#card h2 code")).to_be_visible()
    # What a restore from the back/forward cache fires; the reload is a navigation to the server.
    with page.expect_request(lambda request: request.is_navigation_request() and request.url == page.url):
        page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    expect(page.locator("#card h2 code")).to_be_visible()
