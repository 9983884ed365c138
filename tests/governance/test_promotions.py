"""Four-eyes promotion: one model admin requests, a different one signs with their password."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from annotations.models import Feature, Item
from governance.audit_chain import verify_chain
from governance.models import AuditEvent, PromotionRequest, Signature
from governance.promotions import model_version_record_hash, promotion_decide, promotion_request_create
from models_app.models import ModelVersion, TrainingRun
from models_app.services import training_run_request
from models_app.training import training_run_execute
from tests.conftest import PASSWORD, login, synthetic_rows
from tests.helpers import candidate_train


@pytest.fixture
def champion(trained_dataset) -> ModelVersion:
    return ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)


@pytest.fixture
def candidate(second_version, champion) -> ModelVersion:
    """A second training on the same dataset: v2, a candidate next to the v1 champion (shared, tests/world.py)."""
    version = second_version
    assert version is not None and version.version == 2
    assert version.stage == ModelVersion.Stage.CANDIDATE
    return version


@pytest.fixture
def pending(candidate, model_admin) -> PromotionRequest:
    return promotion_request_create(
        password=PASSWORD, model_version=candidate, user=model_admin, reason="v2 beats v1 on the holdout"
    )


def _decide_url(promotion: PromotionRequest) -> str:
    return reverse("governance:promotion_decide", args=[promotion.pk])


def _api_decide_url(promotion: PromotionRequest) -> str:
    return f"/api/promotion-requests/{promotion.pk}/decision/"


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _assert_nothing_decided(promotion: PromotionRequest, champion: ModelVersion, candidate: ModelVersion) -> None:
    promotion.refresh_from_db()
    assert promotion.status == PromotionRequest.Status.PENDING
    assert promotion.decided_by_id is None
    assert promotion.signature_id is None
    assert ModelVersion.objects.get(pk=champion.pk).stage == ModelVersion.Stage.CHAMPION
    assert ModelVersion.objects.get(pk=candidate.pk).stage == ModelVersion.Stage.CANDIDATE


# --- four eyes --------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_request_in_the_ui(pending, model_admin, champion, candidate):
    client = login(model_admin)
    signatures_before = Signature.objects.count()

    response = client.post(_decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "mine"})

    assert response.status_code == 403
    assert Signature.objects.count() == signatures_before
    _assert_nothing_decided(pending, champion, candidate)


def test_the_requester_is_told_someone_else_must_decide_and_gets_no_sign_form(pending, model_admin):
    response = login(model_admin).get(reverse("governance:promotion_detail", args=[pending.pk]))

    assert response.status_code == 200
    assert response.context["can_decide"] is False
    assert b"a different model admin must decide it" in response.content
    assert b"Approve and sign" not in response.content


def test_the_requester_cannot_approve_their_own_request_through_the_api(pending, model_admin, champion, candidate):
    response = login(model_admin).post(
        _api_decide_url(pending), {"decision": "approve", "password": PASSWORD}, content_type="application/json"
    )

    assert response.status_code == 403
    _assert_nothing_decided(pending, champion, candidate)


def test_the_requester_cannot_approve_their_own_request_through_the_service(pending, model_admin):
    with pytest.raises(PermissionDenied):
        promotion_decide(request_id=pending.pk, user=model_admin, approve=True, password=PASSWORD, reason="")

    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.PENDING


def test_the_database_refuses_a_request_decided_by_its_own_requester(pending, model_admin):
    with pytest.raises(IntegrityError), transaction.atomic():
        PromotionRequest.objects.filter(pk=pending.pk).update(
            decided_by=model_admin, status=PromotionRequest.Status.APPROVED
        )

    pending.refresh_from_db()
    assert pending.decided_by_id is None


# --- a proper approval --------------------------------------------------------------


def test_a_second_model_admin_approves_and_the_champion_alias_moves(
    trained_dataset, pending, model_admin2, champion, candidate, django_capture_on_commit_callbacks
):
    client = login(model_admin2)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "better holdout accuracy"}
        )

    assert response.status_code == 302
    assert response["Location"] == reverse("governance:promotion_detail", args=[pending.pk])
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.APPROVED
    assert pending.decided_by == model_admin2
    assert pending.decision_reason == "better holdout accuracy"
    assert pending.previous_champion_id == champion.pk

    champions = ModelVersion.objects.filter(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    assert list(champions.values_list("pk", flat=True)) == [candidate.pk]
    assert ModelVersion.objects.get(pk=champion.pk).stage == ModelVersion.Stage.RETIRED
    # After commit the open queue is re-predicted by the new champion (eager Celery stands in for the worker).
    open_items = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
    assert open_items.exists()
    assert set(open_items.values_list("predicted_by_version", flat=True)) == {candidate.version}


def test_an_approval_is_signed_with_printed_name_meaning_and_record_hash(pending, model_admin2, candidate):
    login(model_admin2).post(_decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "ok"})

    pending.refresh_from_db()
    signature = pending.signature
    assert signature is not None
    assert signature.signer == model_admin2
    assert signature.printed_name == "Admin2 Tester"
    assert signature.meaning == Signature.Meaning.APPROVAL
    assert signature.record_type == "model_version"
    assert signature.record_id == str(candidate.pk)
    assert signature.record_hash == model_version_record_hash(candidate)
    assert len(signature.record_hash) == 64
    assert signature.signed_at == pending.decided_at


def test_an_approval_writes_promotion_and_champion_events_in_one_request(pending, model_admin2, champion, candidate):
    client = login(model_admin2)
    seq_before = _last_seq()

    client.post(_decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "ok"})

    events = {e.action: e for e in AuditEvent.objects.filter(seq__gt=seq_before)}
    approved = events["promotion.approved"]
    changed = events["model_version.champion_changed"]
    assert approved.actor == model_admin2
    assert approved.object_id == str(pending.pk)
    assert approved.before == {"status": "pending"}
    assert approved.after["status"] == "approved"
    assert approved.after["signature"]["printed_name"] == "Admin2 Tester"
    assert approved.after["signature"]["meaning"] == "approval"
    assert approved.after["signature"]["record_hash"] == model_version_record_hash(candidate)
    assert changed.object_id == str(candidate.pk)
    assert changed.before == {"champion": champion.version}
    assert changed.after == {"champion": candidate.version}
    assert changed.request_id == approved.request_id != ""
    checked, broken = verify_chain(AuditEvent.objects.order_by("seq"))
    assert broken is None and checked == AuditEvent.objects.count()


def test_a_second_model_admin_can_approve_through_the_api(pending, model_admin2, candidate):
    response = login(model_admin2).post(
        _api_decide_url(pending),
        {"decision": "approve", "password": PASSWORD, "reason": "ok"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["decided_by"] == "admin2"
    assert ModelVersion.objects.get(pk=candidate.pk).stage == ModelVersion.Stage.CHAMPION


def test_the_database_refuses_two_champions_for_one_dataset(champion, candidate):
    candidate.stage = ModelVersion.Stage.CHAMPION

    with pytest.raises(IntegrityError), transaction.atomic():
        candidate.save(update_fields=["stage"])

    assert ModelVersion.objects.filter(dataset=champion.dataset, stage=ModelVersion.Stage.CHAMPION).count() == 1


def test_a_decided_request_cannot_be_decided_again(pending, model_admin2, candidate):
    promotion_decide(request_id=pending.pk, user=model_admin2, approve=True, password=PASSWORD, reason="ok")

    with pytest.raises(ValidationError, match="already approved"):
        promotion_decide(request_id=pending.pk, user=model_admin2, approve=False, password=PASSWORD, reason="oops")

    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.APPROVED


# --- refusals that change nothing ---------------------------------------------------


def test_a_wrong_password_signs_nothing_and_only_the_failed_attempt_is_recorded(
    pending, model_admin2, champion, candidate
):
    client = login(model_admin2)
    seq_before = _last_seq()
    signatures_before = Signature.objects.count()

    response = client.post(
        _decide_url(pending), {"decision": "approve", "password": "not-my-password", "reason": "ok"}, follow=True
    )

    assert response.status_code == 400
    assert "Password is not correct; nothing was signed." in response.content.decode()
    assert Signature.objects.count() == signatures_before
    failed = AuditEvent.objects.get(seq__gt=seq_before)  # exactly one new event: the failed attempt
    assert (failed.action, failed.actor, failed.object_id) == ("signature.failed", model_admin2, str(pending.pk))
    _assert_nothing_decided(pending, champion, candidate)


def test_a_wrong_password_through_the_api_is_a_400_that_changes_nothing(pending, model_admin2, champion, candidate):
    client = login(model_admin2)
    seq_before = _last_seq()

    response = client.post(
        _api_decide_url(pending), {"decision": "approve", "password": "nope"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert "password" in response.json()
    assert list(AuditEvent.objects.filter(seq__gt=seq_before).values_list("action", flat=True)) == ["signature.failed"]
    _assert_nothing_decided(pending, champion, candidate)


def test_a_rejection_without_a_reason_is_refused(pending, model_admin2, champion, candidate):
    client = login(model_admin2)
    seq_before = _last_seq()

    response = client.post(
        _decide_url(pending), {"decision": "reject", "password": PASSWORD, "reason": "   "}, follow=True
    )

    assert "Say why you reject this promotion." in response.content.decode()
    assert AuditEvent.objects.filter(seq__gt=seq_before).count() == 0
    _assert_nothing_decided(pending, champion, candidate)


def test_a_rejection_with_a_reason_is_signed_and_leaves_the_champion_alone(pending, model_admin2, champion, candidate):
    client = login(model_admin2)

    response = client.post(
        _decide_url(pending), {"decision": "reject", "password": PASSWORD, "reason": "holdout too small"}
    )

    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.REJECTED
    assert pending.decision_reason == "holdout too small"
    assert pending.signature.meaning == Signature.Meaning.REJECTION
    assert pending.signature.printed_name == "Admin2 Tester"
    assert pending.previous_champion_id is None
    assert ModelVersion.objects.get(pk=champion.pk).stage == ModelVersion.Stage.CHAMPION
    assert ModelVersion.objects.get(pk=candidate.pk).stage == ModelVersion.Stage.CANDIDATE
    event = AuditEvent.objects.get(action="promotion.rejected", object_id=str(pending.pk))
    assert event.reason == "holdout too small"
    assert event.actor == model_admin2
    assert not AuditEvent.objects.filter(action="model_version.champion_changed", object_id=str(candidate.pk)).exists()


def test_a_second_pending_request_for_the_same_version_is_refused(pending, candidate, model_admin, model_admin2):
    with pytest.raises(ValidationError, match="already waiting for a decision"):
        promotion_request_create(password=PASSWORD, model_version=candidate, user=model_admin2, reason="me too")

    api = login(model_admin2).post(
        f"/api/model-versions/{candidate.pk}/promotion-requests/", {"reason": "me too"}, content_type="application/json"
    )

    assert api.status_code == 400
    assert PromotionRequest.objects.filter(model_version=candidate).count() == 1


def test_the_database_refuses_a_second_pending_request_for_the_same_version(pending, candidate, model_admin2):
    with pytest.raises(IntegrityError), transaction.atomic():
        PromotionRequest.objects.create(model_version=candidate, requested_by=model_admin2, reason="sneaky")

    assert PromotionRequest.objects.filter(model_version=candidate).count() == 1


def test_a_request_through_the_ui_needs_a_reason(trained_dataset, candidate, model_admin):
    response = login(model_admin).post(
        reverse("governance:promotion_request", args=[trained_dataset.pk]),
        {"model_version": candidate.pk, "reason": ""},
        follow=True,
    )

    assert "Say why this version should go live." in response.content.decode()
    assert not PromotionRequest.objects.filter(model_version=candidate).exists()


def test_an_auditor_cannot_decide_a_promotion(pending, auditor, champion, candidate):
    client = login(auditor)

    ui = client.post(_decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "ok"})
    api = client.post(
        _api_decide_url(pending), {"decision": "approve", "password": PASSWORD}, content_type="application/json"
    )

    assert (ui.status_code, api.status_code) == (403, 403)
    _assert_nothing_decided(pending, champion, candidate)


def test_an_auditor_can_read_the_promotion_but_is_offered_no_sign_form(pending, auditor):
    response = login(auditor).get(reverse("governance:promotion_detail", args=[pending.pk]))

    assert response.status_code == 200
    assert response.context["can_decide"] is False
    assert b"Approve and sign" not in response.content


def test_signing_locks_after_five_wrong_passwords_even_with_the_right_one(pending, model_admin2, champion, candidate):
    client = login(model_admin2)
    for _ in range(5):
        client.post(_decide_url(pending), {"decision": "approve", "password": "wrong", "reason": "ok"})
    response = client.post(_decide_url(pending), {"decision": "approve", "password": PASSWORD, "reason": "ok"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="signature.failed", actor=model_admin2).count() == 5
    _assert_nothing_decided(pending, champion, candidate)


# --- A version without a holdout evaluation -------------------------------------------------------------------


def test_a_version_never_evaluated_on_a_holdout_cannot_be_promoted(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(20))  # labelled, but no holdout file
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None and version.metrics["holdout"] == {"n": 0}
    with pytest.raises(ValidationError, match="not evaluated on a holdout"):
        promotion_request_create(password=PASSWORD, model_version=version, user=model_admin, reason="please")


def test_models_and_promotion_pages_render_a_version_without_holdout_metrics(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(20))
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    training_run_execute(run_id=run.pk)
    client = login(model_admin)
    assert client.get(f"/models/datasets/{dataset.pk}/").status_code == 200
    assert client.get(f"/governance/datasets/{dataset.pk}/promotions/").status_code == 200


def test_a_subgroup_gate_too_small_to_judge_says_so_once_with_its_n_and_that_it_does_not_block(
    trained_dataset, champion, model_admin, auditor
):
    Feature.objects.filter(dataset=trained_dataset, name="lobes").update(is_sensitive=True)
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="small subgroups")
    request = promotion_request_create(
        password=PASSWORD, model_version=version, user=model_admin, reason="v2", acknowledge_regressions=True
    )
    holdout = version.metrics["holdout"]["subgroups"]["lobes"]  # every group under the minimum size

    html = login(auditor).get(reverse("governance:promotion_detail", args=[request.pk])).content.decode()

    for value, figures in holdout.items():
        row = re.search(
            rf'<tr class="" data-gate-passed="yes">\s*<th scope="row"><bdi>subgroup lobes = {re.escape(str(value))}'
            r"</bdi></th>(.*?)</tr>",
            html,
            re.S,
        )
        assert row is not None, value
        cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
        assert cells[0] == "not judged"  # the result, once
        assert "not judged" not in cells[1]  # ... not repeated in the evidence
        assert cells[1].startswith(f"<bdi>fewer than 30 rows on the holdout</bdi> (n = {figures['n']}). ")
        assert "does not block approval" in cells[1]
