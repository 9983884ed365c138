"""Signing a decision: the password error sits next to the field and says how many tries are
left; a refused self-approval is audited (issue 6, defect 16)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from governance.audit_chain import verify_chain
from governance.models import AuditEvent, PromotionRequest
from governance.promotions import SIGNATURE_MAX_FAILURES, promotion_decide, promotion_request_create
from models_app.models import ModelVersion, TrainingRun
from tests.conftest import PASSWORD, login


@pytest.fixture
def pending(trained_dataset, model_admin) -> PromotionRequest:
    from models_app.services import training_run_request
    from models_app.training import training_run_execute

    run = training_run_request(
        dataset=trained_dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None and version.stage == ModelVersion.Stage.CANDIDATE
    return promotion_request_create(password=PASSWORD, model_version=version, user=model_admin, reason="v2")


def _decide(client, promotion, password):
    return client.post(
        reverse("governance:promotion_decide", args=[promotion.pk]),
        {"decision": "approve", "password": password, "reason": "ok"},
    )


def test_a_wrong_password_is_reported_next_to_the_password_field(pending, model_admin2):
    response = _decide(login(model_admin2), pending, "wrong")

    page = response.content.decode()
    assert response.status_code == 400
    field = page[page.index('id="decide-password"') :]
    assert field.index('aria-invalid="true"') < field.index(">")
    assert 'aria-describedby="decide-password-error"' in field[: field.index(">")]
    error = page[page.index('id="decide-password-error"') :]
    assert "Password is not correct; nothing was signed." in error[: error.index("</span>")]


def test_the_password_error_counts_down_the_tries_left_before_the_lock(pending, model_admin2):
    client = login(model_admin2)

    first = _decide(client, pending, "wrong").content.decode()
    second = _decide(client, pending, "wrong").content.decode()

    assert f"{SIGNATURE_MAX_FAILURES - 1} tries left before signing is locked for 15 minutes" in first
    assert f"{SIGNATURE_MAX_FAILURES - 2} tries left before signing is locked for 15 minutes" in second


def test_the_last_wrong_password_says_signing_is_now_locked(pending, model_admin2):
    client = login(model_admin2)
    for _ in range(SIGNATURE_MAX_FAILURES - 2):
        _decide(client, pending, "wrong")

    one_left = _decide(client, pending, "wrong").content.decode()
    locked = _decide(client, pending, "wrong").content.decode()

    assert "1 try left before signing is locked for 15 minutes" in one_left
    assert "Signing is now locked for 15 minutes." in locked
    assert _decide(client, pending, PASSWORD).status_code == 403


def test_a_refused_self_approval_is_audited_in_its_own_transaction(pending, model_admin):
    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    with pytest.raises(PermissionDenied):
        promotion_decide(request_id=pending.pk, user=model_admin, approve=True, password=PASSWORD, reason="mine")

    event = AuditEvent.objects.get(seq__gt=before)
    assert event.action == "promotion.self_decision_refused"
    assert (event.actor, event.object_type, event.object_id) == (model_admin, "promotion_request", str(pending.pk))
    assert event.dataset_id == pending.model_version.dataset_id
    assert event.after == {"attempted": "approve"}
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.PENDING
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None


def test_a_refused_self_decision_through_the_ui_and_the_api_is_audited(pending, model_admin):
    client = login(model_admin)

    ui = _decide(client, pending, PASSWORD)
    api = client.post(
        f"/api/promotion-requests/{pending.pk}/decision/",
        {"decision": "reject", "password": PASSWORD, "reason": "mine"},
        content_type="application/json",
    )

    assert (ui.status_code, api.status_code) == (403, 403)
    refused = AuditEvent.objects.filter(action="promotion.self_decision_refused", object_id=str(pending.pk))
    assert [e.after["attempted"] for e in refused.order_by("seq")] == ["approve", "reject"]
