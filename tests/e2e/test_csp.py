"""The Content-Security-Policy, applied by a real browser: no page of the loop breaks it.

Every refusal is caught twice: the `securitypolicyviolation` event (recorded by a listener the
test installs before any page script runs; Playwright's own injections are exempt from the
policy) and Chromium's console message ("Refused to apply inline style…", "Refused to execute
inline script…", "Refused to evaluate a string as JavaScript…"). Each page is visited after
its scripts ran and, for the review card, after htmx swapped in the next card, so a style
or eval that htmx or loupe.js would add at run time is caught too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from annotations.models import ImportBatch, Item
from governance.models import PromotionRequest
from models_app.models import ModelVersion, RetrainingPolicy, TrainingRun
from tests.e2e.browser import sign_in, sign_out, sync_api
from tests.helpers import PASSWORD, candidate_train

expect = sync_api().expect
pytestmark = pytest.mark.e2e

LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


class Violations:
    """Collects CSP refusals per page, from the console and from the violation events."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.found: dict[str, list[str]] = {}
        self.console: list[str] = []
        page.context.add_init_script(LISTEN)
        page.on("console", self._on_console)

    def _on_console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.console.append(text)

    def check(self, where: str) -> None:
        self.page.wait_for_load_state("load")
        events = self.page.evaluate("window.__cspViolations || []")
        seen = [*events, *self.console]
        self.console.clear()
        if seen:
            self.found[where] = seen

    def visit(self, where: str, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.ok, f"{where}: {url} answered {response and response.status}"
        policy = response.headers.get("content-security-policy", "")
        assert "style-src 'self'" in policy and "script-src 'self'" in policy, f"{where}: policy {policy!r}"
        self.check(where)

    def assert_none(self) -> None:
        lines = [f"{where}: {v}" for where, found in self.found.items() for v in found]
        assert not lines, "the browser refused something under the CSP:\n" + "\n".join(lines)


def candidate_v2(dataset) -> ModelVersion:
    """A second, evaluated version of the trained dataset, ready to be put up for promotion."""
    return candidate_train(dataset, reason="csp")


def test_no_page_of_the_loop_is_refused_anything_by_the_content_security_policy(  # ~20 s
    live_server, page, trained_dataset, reviewer, model_admin, model_admin2, auditor, django_user_model
):
    dataset = trained_dataset
    RetrainingPolicy.objects.filter(dataset=dataset).update(enabled=False)
    v2 = candidate_v2(dataset)
    base = live_server.url
    ds = f"{base}/datasets/{dataset.pk}"
    csp = Violations(page)

    csp.visit("login", f"{base}/login/")

    sign_in(page, base, "reviewer")
    csp.check("home (reviewer)")
    csp.visit("dataset overview", f"{ds}/")
    csp.visit("review card", f"{ds}/review/")
    # Review and submit: htmx swaps in the next card (and shows its indicator meanwhile).
    first = page.locator("#card h2 code").inner_text()
    page.locator("#card summary").first.click()  # a feature's description opens
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#card h2 code")).not_to_have_text(first)
    csp.check("review card after a submit (htmx swap)")
    page.keyboard.press("s")
    expect(page.locator("#card")).to_be_visible()
    csp.check("review card after a skip")
    sign_out(page)

    sign_in(page, base, "admin1")
    csp.visit("import page", f"{ds}/import/")
    # The guideline page: publish one (preview first), then read it; G opens it over the card too.
    page.goto(f"{ds}/guideline/")
    page.get_by_label("Guideline (Markdown)").fill("## When unsure\n\n| sign | weight |\n|--|--:|\n| margin | 2 |")
    page.get_by_role("button", name="Preview").click()
    csp.check("guideline page with a preview")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".msg-success")).to_be_visible()
    csp.check("guideline page")
    batch = ImportBatch.objects.filter(dataset=dataset).order_by("pk").first()
    csp.visit("import batch detail", f"{ds}/imports/{batch.pk}/")
    csp.visit("models overview", f"{base}/models/datasets/{dataset.pk}/")
    csp.visit("agreement page", f"{ds}/agreement/")
    run = TrainingRun.objects.filter(dataset=dataset).order_by("-pk").first()
    csp.visit("run detail", f"{base}/models/runs/{run.pk}/")
    csp.visit("promotions list", f"{base}/governance/datasets/{dataset.pk}/promotions/")
    page.get_by_label("Version").select_option(value=str(v2.pk))
    page.get_by_label("Why should it go live?").fill("csp check")
    page.get_by_label("Re-enter your password to sign and submit").fill(PASSWORD)  # the request is signed
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.locator(".msg-success")).to_be_visible()
    csp.check("promotion detail after a request")
    sign_out(page)

    sign_in(page, base, "admin2")
    pending = PromotionRequest.objects.get(model_version=v2, status=PromotionRequest.Status.PENDING)
    csp.visit("promotion detail (decision form)", f"{base}/governance/promotions/{pending.pk}/")
    sign_out(page)

    sign_in(page, base, "auditor")
    csp.visit("audit list", f"{base}/governance/audit/")
    page.get_by_role("button", name="Verify the hash chain").click()  # an htmx swap
    expect(page.locator(".ok")).to_be_visible()
    csp.check("audit list with the verify result")
    item = Item.objects.filter(dataset=dataset).order_by("pk").first()
    csp.visit("item history", f"{base}/governance/audit/items/{item.pk}/")
    sign_out(page)

    # The Django admin (5.2) under the same policy: its index and a change list with its JavaScript.

    django_user_model.objects.create_superuser("siteadmin", "", PASSWORD)
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill("siteadmin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    csp.check("admin index")
    csp.visit("admin user list", f"{base}/admin/auth/user/")
    csp.visit(
        "admin user change form (its select widgets are JavaScript)", f"{base}/admin/auth/user/{reviewer.pk}/change/"
    )
    csp.visit("admin group add form", f"{base}/admin/auth/group/add/")

    csp.assert_none()


def test_the_workbench_pages_are_not_refused_anything_either(
    live_server, page, trained_dataset, reviewer, adjudicator, model_admin, queue_draws
):
    from annotations.models import Dataset

    Dataset.objects.filter(pk=trained_dataset.pk).update(
        blind_percent=100, audit_slice_percent=0, audit_slice_off_reason="csp check"
    )
    queue_draws.return_value = 0.5  # every card blind, none from the slice
    base, ds = live_server.url, f"{live_server.url}/datasets/{trained_dataset.pk}"
    csp = Violations(page)

    sign_in(page, base, "reviewer")
    csp.visit("blind review card", f"{ds}/review/")
    first = page.locator("#card h2 code").inner_text()

    def press(key: str) -> None:
        """Press a key that posts the card, and wait until htmx has swapped in the answer: a key pressed
        while the previous card was still being replaced reached the old one (the test was flaky)."""
        with page.expect_response(lambda response: response.request.method == "POST"):
            page.keyboard.press(key)
        page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")

    page.keyboard.press("1")
    press("Enter")
    expect(page.locator("#card h2")).to_contain_text("the model's prediction")
    csp.check("the reveal after a blind answer (htmx swap)")
    press("k")
    expect(page.locator("#card button[value=undo]")).to_be_visible()
    csp.check("the next card with its undo bar")
    press("z")
    # The undone item comes back, held for them, with its prediction shown: they saw it at the reveal.
    expect(page.locator("#card h2 code")).to_have_text(first)
    expect(page.locator("#card .prediction h3")).not_to_have_text("Blind review")
    csp.check("the card after an undo")
    press("u")
    # Answered "uncertain" in the open: nothing to reveal, the next card (blind, like every card here).
    expect(page.locator("#card h2 code")).not_to_have_text(first)
    expect(page.locator("#card .prediction h3")).to_have_text("Blind review")
    page.keyboard.press("1")
    press("Enter")
    expect(page.locator("#card h2")).to_contain_text("the model's prediction")
    page.keyboard.press("k")
    sign_out(page)

    sign_in(page, base, "adjudicator")
    csp.visit("adjudication page", f"{ds}/adjudicate/")
    sign_out(page)

    sign_in(page, base, model_admin.username)
    csp.visit("queue settings", f"{ds}/queue-settings/")
    page.get_by_label("Random audit slice (% of served items)").fill("5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".msg-success")).to_be_visible()
    csp.check("queue settings after a save")

    csp.assert_none()


def _model_key(page: Any) -> tuple[str, str]:
    """The number keys of the card's label marked "(model)" and of another label."""
    keys = page.evaluate(
        """() => [...document.querySelectorAll('#card label.choice')]
             .filter((l) => l.querySelector('input[name=label]'))
             .map((l) => [l.querySelector('input[name=label]').dataset.key, l.textContent.includes('(model)')])"""
    )
    model = next(key for key, is_model in keys if is_model)
    other = next(key for key, is_model in keys if not is_model)
    return model, other


# An inline style given through the CSSOM, which the CSP allows (a script, an extension, the browser
# itself may do it): the card then carries a style attribute. htmx's settle step copied the attributes
# it settles ("style" among them by default) from the old card to the new one with setAttribute, which
# the CSP refuses; base.html's htmx-config leaves "style" out.
STYLED_BY_SCRIPT = "() => { document.getElementById('card').style.minHeight = '10px'; }"


def test_an_error_card_and_the_next_card_after_it_are_not_refused_anything(
    live_server, page, trained_dataset, reviewer, reviewer2
):
    from datetime import timedelta

    from django.utils import timezone

    from annotations.models import Dataset
    from annotations.queue import queue_next_item

    Dataset.objects.filter(pk=trained_dataset.pk).update(
        reason_codes=[{"code": "margin", "text": "Irregular margin"}, {"code": "artefact", "text": "Artefact"}]
    )
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(enabled=False)
    base, ds = live_server.url, f"{live_server.url}/datasets/{trained_dataset.pk}"
    csp = Violations(page)

    def press(key: str) -> None:
        """Press a key that posts the card and wait until htmx has swapped and settled the answer."""
        with page.expect_response(lambda response: response.request.method == "POST"):
            page.keyboard.press(key)
        page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")

    sign_in(page, base, "reviewer")
    csp.visit("review card", f"{ds}/review/")
    first = page.locator("#card h2 code").inner_text()

    # A correction without the required reason code: refused, the same item comes back with the error.
    _, other = _model_key(page)
    page.keyboard.press(other)
    press("Enter")
    expect(page.locator("#card .error")).to_contain_text("not saved")
    expect(page.locator("#card h2 code")).to_have_text(first)
    csp.check("the error card (a correction without its reason code)")
    page.evaluate(STYLED_BY_SCRIPT)
    # Then a good answer: the next card swaps in over the error card.
    model, _ = _model_key(page)
    page.keyboard.press(model)
    press("Enter")
    expect(page.locator("#card h2 code")).not_to_have_text(first)
    expect(page.locator("#card .error")).to_have_count(0)
    csp.check("the next card after an error card")

    # A stale lease: the hold ended and another reviewer took the item; the error names it, then the next card.
    held = queue_next_item(dataset=trained_dataset, reviewer=reviewer).item
    Item.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert queue_next_item(dataset=trained_dataset, reviewer=reviewer2).item.pk == held.pk
    model, _ = _model_key(page)
    page.keyboard.press(model)
    press("Enter")
    expect(page.locator("#card .error")).to_contain_text("someone else")
    csp.check("the error card (a stale lease)")
    page.evaluate(STYLED_BY_SCRIPT)
    model, _ = _model_key(page)
    page.keyboard.press(model)
    press("Enter")
    expect(page.locator("#card .error")).to_have_count(0)
    csp.check("the next card after the stale-lease error card")

    csp.assert_none()
