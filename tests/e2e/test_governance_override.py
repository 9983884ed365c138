"""Issue 10's governance loop in a real browser: a promotion that fails a subgroup gate, overridden with a signed
reason by a second model admin; an auditor then finds the decision, its signature and its evidence from an item's
lineage page and exports it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from governance.models import AuditEvent, PromotionRequest, Signature
from governance.promotions import promotion_warnings
from models_app.models import ModelVersion, Prediction, SnapshotLabel
from tests.e2e.browser import sign_in, sign_out, sync_api
from tests.e2e.governance_world import GovernanceWorld, governance_world_build
from tests.e2e.test_accessibility import axe_violations, report
from tests.e2e.test_layout import OVERFLOWING
from tests.helpers import PASSWORD, make_user
from workflow_site.access import Role

expect = sync_api().expect
pytestmark = pytest.mark.e2e

OVERRIDE_REASON = "v2 fixes site A's legacy labels; site B's pool is being relabelled by pathology this week"


@pytest.fixture
def governance_world(transactional_db) -> GovernanceWorld:
    return governance_world_build()


def gate_row(page, gate: str):  # type: ignore[no-untyped-def]
    """The gates table's row whose header is the gate's name."""
    header = page.get_by_role("rowheader", name=gate, exact=True)
    return page.locator("table.gates tr").filter(has=header)


def test_failed_subgroup_gate_is_overridden_with_a_signed_reason(live_server, page, governance_world):
    world = governance_world
    base = live_server.url
    v2 = ModelVersion.objects.get(pk=world.v2_id)
    warnings = promotion_warnings(v2)  # whatever else v2 is worse on, the pages say so and want the tick

    # 1. admin1 requests v2's promotion, signing it (meaning authored).
    sign_in(page, base, world.admin.username)
    page.goto(f"{base}/governance/datasets/{world.dataset.pk}/promotions/")
    page.get_by_label("Version", exact=True).select_option(value=str(v2.pk))
    page.get_by_label("Why should it go live?").fill("Learns site A's corrections to the legacy labels")
    if warnings:
        page.get_by_role("checkbox", name=re.compile("I have seen that")).check()
    page.get_by_label("Re-enter your password to sign and submit").fill(PASSWORD)
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.get_by_text("a different model admin must decide it")).to_be_visible()
    promotion = PromotionRequest.objects.get(model_version=v2)
    assert promotion.status == PromotionRequest.Status.PENDING
    promotion_url = page.url
    assert promotion_url.endswith(f"/{promotion.pk}/")
    sign_out(page)

    # 2. admin2 sees which gate failed, in words: the subgroup gate by name, "failed" as text (not colour alone),
    #    with its evidence; the overall gates pass, so the regression on site B hides in the overall figure.
    sign_in(page, base, world.signer.username)
    page.goto(promotion_url)
    failed = gate_row(page, world.failing_gate)
    expect(failed).to_have_attribute("data-gate-passed", "no")
    expect(failed.get_by_role("cell").first).to_have_text("failed")
    expect(failed.get_by_role("cell").nth(1)).to_contain_text("against the champion's")
    for passing in ("subgroup site = A", "no regression overall", "paired test"):
        expect(gate_row(page, passing).get_by_role("cell").first).to_have_text("passed")
    violations = axe_violations(page)
    assert not violations, report({"promotion with a failed gate": violations})
    # On a phone the failed gate is still on the page, not pushed off its right edge (wide tables scroll alone).
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(OVERFLOWING, 390) == []
    box = failed.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # 3. Approving without an override reason is refused, the error beside the override field, nothing changed.
    password = page.get_by_label("Re-enter your password to sign", exact=True)
    override = page.get_by_label("A gate failed: approve only as a signed override, saying why")
    if warnings:
        page.get_by_role("checkbox", name=re.compile("I have seen that")).check()
    password.fill(PASSWORD)
    page.get_by_role("button", name="Approve and sign").click()
    error = page.locator("#decide-override-error")
    expect(error).to_contain_text(f"Failed gate(s): {world.failing_gate}")
    expect(override).to_have_attribute("aria-invalid", "true")
    expect(override).to_have_attribute("aria-describedby", "decide-override-error")
    promotion.refresh_from_db()
    assert promotion.status == PromotionRequest.Status.PENDING
    assert ModelVersion.objects.get(dataset=world.dataset, stage=ModelVersion.Stage.CHAMPION).pk == world.v1_id

    # 4. ... and signed as an override, with the reason.
    override.fill(OVERRIDE_REASON)
    if warnings:
        page.get_by_role("checkbox", name=re.compile("I have seen that")).check()
    password.fill(PASSWORD)
    page.get_by_role("button", name="Approve and sign").click()
    signed = page.get_by_role("region", name="Electronic signature")
    expect(signed.get_by_role("heading", name="Signed approval overriding failed gates")).to_be_visible()
    expect(signed).to_contain_text("meaning: Approval overriding failed gates")
    expect(signed).to_contain_text("Signature verified")
    expect(page.get_by_text(f"signed as an override: {OVERRIDE_REASON}")).to_be_visible()
    # As judged at the decision: the stored gates, the failed one still shown as failed.
    expect(gate_row(page, world.failing_gate).get_by_role("cell").first).to_have_text("failed")

    # The database agrees: v2 is the champion, the signature means "override", the event carries the override.
    assert ModelVersion.objects.get(dataset=world.dataset, stage=ModelVersion.Stage.CHAMPION).pk == v2.pk
    promotion.refresh_from_db()
    assert promotion.status == PromotionRequest.Status.APPROVED
    assert promotion.decided_by == world.signer
    assert promotion.override_reason == OVERRIDE_REASON
    assert promotion.signature.meaning == Signature.Meaning.OVERRIDE
    assert [g["gate"] for g in promotion.gate_results if not g["passed"]] == [world.failing_gate]
    event = AuditEvent.objects.get(action="promotion.approved", object_id=str(promotion.pk))
    assert event.actor == world.signer
    assert event.after["gates_overridden"] is True
    assert event.after["override_reason"] == OVERRIDE_REASON
    assert event.after["signature"]["meaning"] == Signature.Meaning.OVERRIDE
    # The new champion predicted the open items (refreshed after the approval committed).
    item_id = world.open_item_ids[0]
    assert Prediction.objects.filter(item_id=item_id, model_version=v2).exists()
    sign_out(page)

    # 5. An auditor traces the decision from an item site B's reviewer labelled (its gold label trained v2):
    #    the item's lineage shows who reviewed it and why, and down the line v2's promotion decision and signature.
    auditor = make_user("auditor_e2e", Role.AUDITOR)
    traced = (
        SnapshotLabel.objects.filter(snapshot_id=v2.snapshot_id, review__reviewer=world.reviewer)
        .order_by("item_id")
        .first()
    )
    assert traced is not None
    sign_in(page, base, auditor.username)
    page.goto(f"{base}/governance/lineage/item/{traced.item_id}/")
    expect(page.locator('[data-section="reviews"]')).to_contain_text(world.reviewer.username)
    decision = page.locator('[data-section="promotions"] tr').filter(has_text=f"#{promotion.pk} of v{v2.version}")
    expect(decision).to_contain_text(Signature.Meaning.OVERRIDE)
    expect(decision).to_contain_text(OVERRIDE_REASON)
    # ... its evidence: the decision's own page, the gates as judged at the decision and the signature checked.
    decision.get_by_role("link", name=re.compile("^Page of")).click()
    expect(gate_row(page, world.failing_gate).get_by_role("cell").first).to_have_text("failed")
    expect(page.get_by_role("region", name="Electronic signature")).to_contain_text("Signature verified")
    page.go_back()

    # 6. ... and exports the lineage: the file holds the decision with its signature, and the trail records it.
    with page.expect_download() as download:
        page.get_by_role("link", name="JSONL", exact=True).click()
    *lines, summary_line = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line) for line in lines]
    row = next(r for r in exported if r["kind"] == "promotion" and r["id"] == promotion.pk)
    assert row["facts"]["signed_record_sha256"] == promotion.signature.record_hash
    assert row["facts"]["signature_meaning"] == Signature.Meaning.OVERRIDE
    assert row["facts"]["override_reason"] == OVERRIDE_REASON
    assert row["facts"]["signature_matches_record_now"] is True
    assert json.loads(summary_line)["summary"]["rows"] == len(exported)
    recorded = AuditEvent.objects.get(action="audit.exported", actor=auditor)
    assert recorded.after["start"] == f"item:{traced.item_id}" and recorded.after["nodes"] == len(exported)
    sign_out(page)
