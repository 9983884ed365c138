"""The whole loop in a real browser: review with the keyboard, train, four-eyes promotion, audit."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from annotations.models import Review
from governance.promotions import promotion_warnings
from models_app.models import ModelVersion, RetrainingPolicy
from tests.e2e.browser import sign_in, sign_out, sync_api
from tests.helpers import PASSWORD

expect = sync_api().expect
pytestmark = pytest.mark.e2e


def test_reviewer_corrects_admin_trains_second_admin_promotes_auditor_verifies(
    live_worker, live_server, page, trained_dataset, reviewer, model_admin, model_admin2, auditor
):
    dataset = trained_dataset
    RetrainingPolicy.objects.filter(dataset=dataset).update(enabled=False)  # training is started by hand here
    base = live_server.url

    # 1. A reviewer corrects three items with the keyboard only.
    sign_in(page, base, "reviewer")
    page.get_by_role("link", name="Start reviewing").click()
    for _ in range(3):
        card_id = page.locator("#card h2 code").inner_text()
        other = page.locator("label.choice", has_not_text="(model)").first
        key = other.locator("kbd").inner_text()
        page.keyboard.press(key)
        expect(other.locator("input")).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#card h2 code")).not_to_have_text(card_id)
    # The swap happened without a page load: the URL is still the review page.
    assert page.url.endswith(f"/datasets/{dataset.pk}/review/")
    assert Review.objects.filter(reviewer=reviewer, decision=Review.Decision.CORRECT).count() == 3
    page.keyboard.press("s")  # skip works from the keyboard too
    expect(page.locator("#card")).to_be_visible()
    sign_out(page)

    # 2. A model admin starts training; the real worker trains v2.
    sign_in(page, base, "admin1")
    page.goto(f"{base}/models/datasets/{dataset.pk}/")
    page.get_by_label("Reason").fill("three corrections")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=120_000)
    expect(page.get_by_text("v2 against the current champion v1")).to_be_visible()

    # 3. ... and requests its promotion.
    page.goto(f"{base}/governance/datasets/{dataset.pk}/promotions/")
    v2 = ModelVersion.objects.get(dataset=dataset, version=2)
    page.get_by_label("Version", exact=True).select_option(value=str(v2.pk))
    page.get_by_label("Why should it go live?").fill("Learns from the reviewers' corrections")
    # Three corrections may cost some calibration: whatever v2 is worse on, the page says so
    # and the request needs the tick (defect 13).
    warnings = promotion_warnings(v2)
    for warning in warnings:
        expect(page.get_by_text(warning)).to_be_visible()
    if warnings:
        page.get_by_role("checkbox", name=re.compile("I have seen that")).check()
    page.get_by_label("Re-enter your password to sign and submit").fill(PASSWORD)  # the request is signed: authored
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.get_by_text("a different model admin must decide it")).to_be_visible()
    promotion_url = page.url
    sign_out(page)

    # 4. A second model admin approves it, signing with their password.
    sign_in(page, base, "admin2")
    page.goto(promotion_url)
    page.get_by_label("Re-enter your password to sign").fill(PASSWORD)
    if warnings:
        page.get_by_role("checkbox", name=re.compile("I have seen that")).check()
    page.get_by_role("button", name="Approve and sign").click()
    expect(page.get_by_role("heading", name="Signed approval")).to_be_visible()
    assert ModelVersion.objects.get(dataset=dataset, stage=ModelVersion.Stage.CHAMPION).version == 2
    sign_out(page)

    # 5. The auditor sees every step and the chain verifies.
    sign_in(page, base, "auditor")
    page.get_by_role("link", name="Audit trail").click()
    table = page.locator("table.audit")
    for action in (
        "review.submitted",
        "training.requested",
        "training.finished",
        "model_version.registered",
        "promotion.requested",
        "promotion.approved",
        "model_version.champion_changed",
        "auth.login",
    ):
        page.goto(f"{base}/governance/audit/?action={action}")
        expect(table).to_contain_text(action)
    page.get_by_role("button", name="Verify the hash chain").click()
    expect(page.get_by_text(re.compile(r"Chain verified: \d+ events"))).to_be_visible()
    call_command("verify_audit")
