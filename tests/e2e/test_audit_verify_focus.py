"""Verifying the audit trail by keyboard (governance): the button that had focus is swapped away by htmx,
so focus must land on the result, not fall to <body>, and the outcome must be spoken once.

The result's heading takes focus (tabindex="-1", static/js/loupe.js); the outcome line is the one live
region that says it; the integrity line at the top, swapped in out of band with the same news, is silent.
"""

from __future__ import annotations

import pytest

from tests.e2e.browser import sign_in, sync_api

expect = sync_api().expect
pytestmark = pytest.mark.e2e

BUTTON = "Verify the hash chain and checkpoints"

# Live regions (implicit or explicit) that are not switched off, and what they say.
LIVE_TEXTS = """() => [...document.querySelectorAll('[role=status], [role=alert], [aria-live]')]
  .filter((el) => el.getAttribute('aria-live') !== 'off')
  .map((el) => el.textContent.replace(/\\s+/g, ' ').trim())
  .filter((text) => /verif/i.test(text))"""


def _tab_to(page, name: str, limit: int = 60) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until the focused element is the button called `name` (keyboard only, as a user would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement && document.activeElement.textContent.trim()")
        if focused == name:
            return
    raise AssertionError(f"Tab never reached the {name!r} button")


@pytest.mark.parametrize("path", ["/governance/audit/verify/", "/governance/audit/"], ids=["verify page", "audit list"])
def test_verifying_by_keyboard_moves_focus_to_the_result_and_announces_it_once(
    live_server, page, trained_dataset, auditor, path
):
    sign_in(page, live_server.url, "auditor")
    page.goto(f"{live_server.url}{path}")
    expect(page.locator("#audit-integrity")).to_contain_text("Never verified")

    _tab_to(page, BUTTON)
    with page.expect_response(lambda response: response.request.method == "POST"):
        page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")

    expect(page.locator("#verify-result .ok")).to_contain_text("Chain verified")
    # The out-of-band integrity line was swapped in too.
    expect(page.locator("#audit-integrity")).to_contain_text("no problem found")
    # Focus is on the result's heading, not on <body>.
    expect(page.locator("#verify-result-title")).to_be_focused()
    assert page.evaluate("() => document.activeElement.id") == "verify-result-title"
    assert page.evaluate("() => document.activeElement.getAttribute('tabindex')") == "-1"
    # Spoken once: one live region tells the outcome; the integrity line that repeats it is silent.
    spoken = page.evaluate(LIVE_TEXTS)
    assert len(spoken) == 1, spoken
    assert spoken[0].startswith("Chain verified")
    assert page.locator("#verify-result [role=status]").count() == 1
    assert page.locator("#audit-integrity").get_attribute("aria-live") == "off"
    # The heading is not itself a live region (focus reads it; the status line announces the outcome).
    assert page.evaluate(
        "() => !document.activeElement.closest('[role=status], [role=alert], [aria-live]:not([aria-live=off])')"
    )
    # Tab goes on from the result, not from the top of the page.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement !== document.body")


def test_the_result_offers_verify_again_by_keyboard(live_server, page, trained_dataset, auditor):
    sign_in(page, live_server.url, "auditor")
    page.goto(f"{live_server.url}/governance/audit/verify/")
    _tab_to(page, BUTTON)
    page.keyboard.press("Enter")
    expect(page.locator("#verify-result .ok")).to_contain_text("Chain verified")
    first = page.locator("#verify-result .ok").inner_text()

    _tab_to(page, "Verify again")
    with page.expect_response(lambda response: response.request.method == "POST"):
        page.keyboard.press("Enter")

    # A second run: the trail grew by the first one's events, and focus is on the new result.
    expect(page.locator("#verify-result .ok")).not_to_have_text(first)
    expect(page.locator("#verify-result .ok")).to_contain_text("Chain verified")
    expect(page.locator("#verify-result-title")).to_be_focused()


def test_an_auditor_uploads_kept_checkpoints_by_keyboard_and_a_bad_file_is_named(
    live_server, page, trained_dataset, auditor, settings, tmp_path
):
    """The upload of checkpoint documents kept outside Loupe (governance/kept_checkpoint_forms.py)."""
    import json

    from governance.checkpoint_signing import new_private_key_b64
    from governance.checkpoints import audit_checkpoint_create, checkpoint_export

    settings.LOUPE_AUDIT_SIGNING_KEY = new_private_key_b64()
    kept, bad = tmp_path / "kept.json", tmp_path / "not-a-checkpoint.json"
    kept.write_text(json.dumps(checkpoint_export(audit_checkpoint_create())))
    bad.write_text('{"statement": {"type": "x"}, "signature": "s", "public_key": "k"}')
    sign_in(page, live_server.url, "auditor")
    page.goto(f"{live_server.url}/governance/audit/")
    page.get_by_role("link", name="Verify against checkpoints you kept").click()

    picker = page.get_by_label("Checkpoint documents you kept")
    picker.set_input_files([str(kept), str(bad)])
    _tab_to(page, "Verify against these checkpoints")
    page.keyboard.press("Enter")

    expect(page.locator("#kept-errors")).to_contain_text("Nothing was verified")
    expect(page.locator("#kept-errors")).to_contain_text("not-a-checkpoint.json: statement type 'x'")
    expect(picker).to_have_attribute("aria-invalid", "true")

    picker.set_input_files([str(kept)])
    _tab_to(page, "Verify against these checkpoints")
    page.keyboard.press("Enter")

    expect(page.locator("#verify-result .ok")).to_contain_text("and 1 checkpoint you kept", timeout=30_000)
