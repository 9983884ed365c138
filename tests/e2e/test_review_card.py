"""The review card in a real browser: the lease's time left, and a spoken warning before it ends."""

from __future__ import annotations

import pytest

from tests.e2e.browser import sign_in, sync_api

pytestmark = pytest.mark.e2e


def test_the_card_warns_in_a_live_region_a_minute_before_the_lease_ends(
    live_server,
    page,
    trained_dataset,
    reviewer,
    settings,
):
    settings.LOUPE_LEASE_SECONDS = 45
    sign_in(page, live_server.url, "reviewer")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{live_server.url}/datasets/{trained_dataset.pk}/review/")

    expect = sync_api().expect
    warning = page.locator("#card #lease-warning")
    expect(warning).to_contain_text("ends in under a minute")
    expect(warning).to_have_attribute("aria-live", "polite")
    expect(page.locator("#card [data-lease-remaining]")).to_have_text(" (1 minute left)")
    assert dialogs == []
