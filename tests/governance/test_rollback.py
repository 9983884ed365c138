"""Rollback as a named act: the previous champion back, through the same four eyes, recorded as a rollback."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from governance.audit_chain import verify_chain
from governance.models import AuditEvent, PromotionRequest, Signature
from governance.promotions import promotion_decide, promotion_request_create
from governance.rollbacks import rollback_request_create, rollback_target
from models_app.models import ModelVersion
from tests.conftest import PASSWORD, login
from tests.helpers import candidate_train


def _promote(version: ModelVersion, requester, approver) -> PromotionRequest:
    request = promotion_request_create(
        password=PASSWORD,
        model_version=version,
        user=requester,
        reason="better on the holdout",
        acknowledge_regressions=True,
    )
    return promotion_decide(
        request_id=request.pk, user=approver, approve=True, password=PASSWORD, reason="ok", acknowledge_regressions=True
    )


@pytest.fixture
def replaced(trained_dataset, model_admin, model_admin2) -> tuple[ModelVersion, ModelVersion]:
    """(the first champion, the version that replaced it through an approved promotion)."""
    first = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    second = candidate_train(trained_dataset, requested_by=model_admin, reason="more labels")
    _promote(second, model_admin, model_admin2)
    return first, second


def _actions_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", flat=True))


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_a_champion_that_replaced_nothing_cannot_be_rolled_back_and_nothing_changes(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    PromotionRequest.objects.filter(model_version=champion).update(previous_champion=None)
    seq = _last_seq()

    with pytest.raises(ValidationError, match="no previous champion"):
        rollback_request_create(password=PASSWORD, dataset_id=trained_dataset.pk, user=model_admin, reason="bad week")

    assert rollback_target(dataset_id=trained_dataset.pk) is None
    assert not PromotionRequest.objects.filter(kind=PromotionRequest.Kind.ROLLBACK).exists()
    assert _last_seq() == seq


def test_a_rollback_is_requested_by_one_admin_and_signed_by_another_as_a_rollback(
    trained_dataset, replaced, model_admin, model_admin2
):
    first, second = replaced
    assert rollback_target(dataset_id=trained_dataset.pk) == first
    seq = _last_seq()

    request = rollback_request_create(
        password=PASSWORD,
        dataset_id=trained_dataset.pk,
        user=model_admin,
        reason="v2 misreads the new scanner",
        acknowledge_regressions=True,
    )
    assert (request.kind, request.model_version_id, request.status) == ("rollback", first.pk, "pending")
    with pytest.raises(PermissionDenied):
        promotion_decide(request_id=request.pk, user=model_admin, approve=True, password=PASSWORD, reason="")
    assert ModelVersion.objects.get(pk=second.pk).stage == ModelVersion.Stage.CHAMPION  # the refusal changed nothing

    decided = promotion_decide(
        request_id=request.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="confirmed with the radiologists",
        acknowledge_regressions=True,
    )

    assert ModelVersion.objects.get(pk=first.pk).stage == ModelVersion.Stage.CHAMPION
    assert ModelVersion.objects.get(pk=second.pk).stage == ModelVersion.Stage.RETIRED
    assert decided.previous_champion_id == second.pk
    assert Signature.objects.get(pk=decided.signature_id).meaning == Signature.Meaning.ROLLBACK
    actions = _actions_since(seq)
    assert actions[0] == "rollback.requested"
    assert "promotion.self_decision_refused" in actions
    assert actions[-2:] == ["model_version.champion_changed", "rollback.approved"]
    approved = AuditEvent.objects.get(action="rollback.approved")
    assert approved.after["kind"] == "rollback" and approved.after["signature"]["meaning"] == "rollback"
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert checked > 0 and broken is None


def test_rolling_back_twice_puts_the_newer_version_back(trained_dataset, replaced, model_admin, model_admin2):
    first, second = replaced
    for expected in (first, second):
        request = rollback_request_create(
            password=PASSWORD,
            dataset_id=trained_dataset.pk,
            user=model_admin,
            reason="undo",
            acknowledge_regressions=True,
        )
        assert request.model_version_id == expected.pk
        promotion_decide(
            request_id=request.pk,
            user=model_admin2,
            approve=True,
            password=PASSWORD,
            reason="ok",
            acknowledge_regressions=True,
        )
        assert ModelVersion.objects.get(dataset=trained_dataset, stage="champion") == expected


def test_a_rollback_needs_a_reason_and_its_rejection_one_too(trained_dataset, replaced, model_admin, model_admin2):
    with pytest.raises(ValidationError) as missing:
        rollback_request_create(password=PASSWORD, dataset_id=trained_dataset.pk, user=model_admin, reason="  ")
    assert "reason" in missing.value.message_dict
    request = rollback_request_create(
        password=PASSWORD, dataset_id=trained_dataset.pk, user=model_admin, reason="drift", acknowledge_regressions=True
    )
    with pytest.raises(ValidationError) as unreasoned:
        promotion_decide(request_id=request.pk, user=model_admin2, approve=False, password=PASSWORD, reason="")
    assert "rollback" in unreasoned.value.message_dict["reason"][0]

    promotion_decide(request_id=request.pk, user=model_admin2, approve=False, password=PASSWORD, reason="not needed")
    assert PromotionRequest.objects.get(pk=request.pk).status == "rejected"
    assert AuditEvent.objects.filter(action="rollback.rejected").count() == 1
    assert ModelVersion.objects.get(pk=replaced[1].pk).stage == ModelVersion.Stage.CHAMPION


def test_a_second_pending_rollback_is_refused(trained_dataset, replaced, model_admin):
    rollback_request_create(
        password=PASSWORD, dataset_id=trained_dataset.pk, user=model_admin, reason="drift", acknowledge_regressions=True
    )
    with pytest.raises(ValidationError, match="already waiting"):
        rollback_request_create(
            password=PASSWORD,
            dataset_id=trained_dataset.pk,
            user=model_admin,
            reason="again",
            acknowledge_regressions=True,
        )


def test_the_promotions_page_offers_the_rollback_to_admins_only_and_the_request_reads_as_one(
    trained_dataset, replaced, model_admin, auditor
):
    first, second = replaced
    url = reverse("governance:promotion_list", args=[trained_dataset.pk])
    page = login(model_admin).get(url).content.decode()
    assert f"Roll back to v{first.version}" in page and f"that v{second.version} replaced" in page
    assert "Roll back to" not in login(auditor).get(url).content.decode()

    response = login(model_admin).post(
        reverse("governance:rollback_request", args=[trained_dataset.pk]),
        {"rollback_reason": "", "rollback_acknowledge_regressions": "on"},
    )
    assert response.status_code == 400 and 'id="rb-reason-error"' in response.content.decode()

    response = login(model_admin).post(
        reverse("governance:rollback_request", args=[trained_dataset.pk]),
        {"rollback_reason": "the new scanner", "rollback_acknowledge_regressions": "on", "rollback_password": PASSWORD},
    )
    request = PromotionRequest.objects.get(kind="rollback")
    assert response.status_code == 302 and response.url == reverse("governance:promotion_detail", args=[request.pk])
    detail = login(auditor).get(response.url).content.decode()
    assert f"Rollback #{request.pk}: back to v{first.version}" in detail


def test_the_api_requests_a_rollback_and_says_its_kind(trained_dataset, replaced, model_admin):
    client = login(model_admin)
    url = f"/api/datasets/{trained_dataset.pk}/rollback-requests/"
    answer = client.post(
        url, {"reason": "drift", "acknowledge_regressions": True, "password": PASSWORD}, content_type="application/json"
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["kind"] == "rollback" and answer.json()["model_version_id"] == replaced[0].pk
