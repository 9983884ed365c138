"""Promotion requests as a state machine, and signatures that show when their record changed (issue 10, 3-4)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from governance.models import AuditEvent, PromotionRequest, Signature
from governance.promotion_requests import promotion_draft_edit, promotion_submit, promotion_withdraw
from governance.promotion_states import TRANSITIONS, Action, TransitionForbidden, TransitionRefused
from governance.promotions import promotion_decide, promotion_request_create
from governance.signing import SIGNATURE_MAX_FAILURES, signature_verify
from models_app.models import Evaluation, ModelVersion
from tests.conftest import PASSWORD, login


@pytest.fixture
def candidate(second_version) -> ModelVersion:
    version = second_version  # trained once per process (tests/world.py)
    assert version is not None
    return version


@pytest.fixture
def draft(candidate, model_admin) -> PromotionRequest:
    return promotion_request_create(
        model_version=candidate, user=model_admin, reason="first thoughts", draft=True, acknowledge_regressions=True
    )


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def _actions_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", flat=True))


def _in_state(request: PromotionRequest, state: str, admin2) -> PromotionRequest:
    """Bring `request` (a draft by model_admin) into `state` through the services."""
    requester = request.requested_by
    if state == "draft":
        return request
    if state == "withdrawn":
        return promotion_withdraw(request_id=request.pk, user=requester, reason="not now")
    promotion_submit(request_id=request.pk, user=requester, password=PASSWORD, acknowledge_regressions=True)
    if state in ("approved", "rejected"):
        promotion_decide(
            request_id=request.pk,
            user=admin2,
            approve=state == "approved",
            password=PASSWORD,
            reason="decided",
            acknowledge_regressions=True,
            override_reason="test override",
        )
    request.refresh_from_db()
    assert request.status == state
    return request


def _act(action: Action, request: PromotionRequest, user) -> None:
    if action == Action.EDIT:
        promotion_draft_edit(request_id=request.pk, user=user, reason="edited")
    elif action == Action.SUBMIT:
        promotion_submit(request_id=request.pk, user=user, password=PASSWORD, acknowledge_regressions=True)
    elif action == Action.WITHDRAW:
        promotion_withdraw(request_id=request.pk, user=user, reason="changed my mind")
    else:
        promotion_decide(
            request_id=request.pk,
            user=user,
            approve=action == Action.APPROVE,
            password=PASSWORD,
            reason="decided",
            acknowledge_regressions=True,
            override_reason="test override",
        )


# --- the table, walked -------------------------------------------------------------------------


@pytest.mark.parametrize("state", PromotionRequest.Status.values)
@pytest.mark.parametrize("action", list(Action))
def test_every_state_and_action_pair_is_allowed_only_as_the_table_says(draft, model_admin, model_admin2, state, action):
    request = _in_state(draft, state, model_admin2)
    allowed = TRANSITIONS.get((state, action))
    # The person who could do it in the right state: the requester for their own acts, another admin for decisions.
    user = model_admin2 if action in (Action.APPROVE, Action.REJECT) else model_admin
    seq = _last_seq()

    if allowed is None:
        with pytest.raises(TransitionRefused):
            _act(action, request, user)
        request.refresh_from_db()
        assert request.status == state
        refused = AuditEvent.objects.get(seq__gt=seq, action="promotion.transition_refused")
        assert refused.after == {"attempted": str(action)} and refused.before == {"status": state}
        assert refused.object_id == str(request.pk) and refused.actor == user
    else:
        _act(action, request, user)
        request.refresh_from_db()
        assert request.status == allowed[0]
        assert "promotion.transition_refused" not in _actions_since(seq)


@pytest.mark.parametrize("action", [Action.EDIT, Action.SUBMIT, Action.WITHDRAW])
def test_only_the_requester_may_edit_submit_or_withdraw_and_the_refusal_is_audited(draft, model_admin2, action):
    seq = _last_seq()

    with pytest.raises(TransitionForbidden):
        _act(action, draft, model_admin2)

    draft.refresh_from_db()
    assert draft.status == "draft"
    assert _actions_since(seq) == ["promotion.transition_refused"]


def test_someone_else_withdrawing_is_a_403_in_the_ui_and_the_api(draft, model_admin2):
    client = login(model_admin2)
    ui = client.post(reverse("governance:promotion_withdraw", args=[draft.pk]), {"withdrawal_reason": "mine now"})
    api = client.post(
        f"/api/promotion-requests/{draft.pk}/withdraw/", {"withdrawal_reason": "x"}, content_type="application/json"
    )
    assert (ui.status_code, api.status_code) == (403, 403)
    assert AuditEvent.objects.filter(action="promotion.transition_refused", object_id=str(draft.pk)).count() == 2


def test_approving_a_draft_is_refused_with_a_clear_error(draft, model_admin2):
    with pytest.raises(ValidationError, match="draft that its requester has not submitted"):
        _act(Action.APPROVE, draft, model_admin2)


def test_submitting_twice_is_refused(draft, model_admin):
    _act(Action.SUBMIT, draft, model_admin)
    with pytest.raises(ValidationError, match="already submitted"):
        _act(Action.SUBMIT, draft, model_admin)


# --- drafts and withdrawal ---------------------------------------------------------------------


def test_a_draft_is_unsigned_not_offered_for_a_decision_and_blocks_nobody(draft, candidate, model_admin2):
    assert draft.status == "draft" and draft.request_signature is None
    page = login(model_admin2).get(reverse("governance:promotion_detail", args=[draft.pk]))
    assert page.context["can_decide"] is False and b"Approve and sign" not in page.content
    # The requester signs the request's own record; the page's header hash is the version's, which the decision signs.
    assert b"Model version record hash (what the decision signs)" in page.content
    # Judged live, as a pending request is: no decision has been made, so none is named.
    assert (
        b"as judged at the decision" not in page.content
        and b"Promotion gates, against the current champion" in page.content
    )
    # A draft does not hold the one-pending-per-version slot.
    other = promotion_request_create(
        model_version=candidate, user=model_admin2, reason="mine", password=PASSWORD, acknowledge_regressions=True
    )
    assert other.status == "pending"


def test_the_requester_edits_then_signs_and_submits_a_draft_in_the_ui(draft, model_admin):
    client = login(model_admin)
    detail = client.get(reverse("governance:promotion_detail", args=[draft.pk])).content.decode()
    assert "Sign and submit" in detail and "Save draft" in detail and "Withdraw" in detail

    client.post(reverse("governance:promotion_edit", args=[draft.pk]), {"reason": "better reasons"})
    draft.refresh_from_db()
    assert draft.reason == "better reasons" and draft.status == "draft"

    response = client.post(
        reverse("governance:promotion_submit", args=[draft.pk]),
        {"reason": "final reasons", "password": PASSWORD, "acknowledge_regressions": "on"},
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "pending" and draft.reason == "final reasons"
    signature = draft.request_signature
    assert (signature.meaning, signature.signer, signature.record_type) == (
        Signature.Meaning.AUTHORED,
        model_admin,
        "promotion_request",
    )
    assert signature_verify(signature).ok
    event = AuditEvent.objects.get(action="promotion.submitted", object_id=str(draft.pk))
    assert event.after["signature"]["meaning"] == "authored"


def test_a_wrong_password_on_submit_signs_nothing_and_is_recorded(draft, model_admin):
    client = login(model_admin)
    seq = _last_seq()
    response = client.post(
        reverse("governance:promotion_submit", args=[draft.pk]), {"password": "nope", "acknowledge_regressions": "on"}
    )
    assert response.status_code == 400 and "Password is not correct" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.request_signature is None
    assert _actions_since(seq) == ["signature.failed"]


def test_a_pending_request_is_withdrawn_by_its_requester_with_a_reason(draft, model_admin):
    _act(Action.SUBMIT, draft, model_admin)
    with pytest.raises(ValidationError):
        promotion_withdraw(request_id=draft.pk, user=model_admin, reason="  ")
    response = login(model_admin).post(
        f"/api/promotion-requests/{draft.pk}/withdraw/",
        {"withdrawal_reason": "found a bug"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    event = AuditEvent.objects.get(action="promotion.withdrawn", object_id=str(draft.pk))
    assert (event.before, event.after["status"], event.reason) == ({"status": "pending"}, "withdrawn", "found a bug")


def test_the_list_filters_by_status_and_hides_others_drafts(draft, model_admin, model_admin2, trained_dataset):
    url = reverse("governance:promotion_list", args=[trained_dataset.pk])
    own = login(model_admin).get(url + "?status=draft")
    assert [r.pk for r, _, _ in own.context["rows"]] == [draft.pk]
    assert 'aria-current="page">Draft' in own.content.decode()
    assert login(model_admin2).get(url + "?status=draft").context["rows"] == []


def test_the_api_saves_a_draft_and_submits_it(candidate, model_admin):
    client = login(model_admin)
    created = client.post(
        f"/api/model-versions/{candidate.pk}/promotion-requests/",
        {"reason": "v2", "draft": True},
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["status"] == "draft"
    pk = created.json()["id"]
    submitted = client.post(
        f"/api/promotion-requests/{pk}/submit/",
        {"password": PASSWORD, "acknowledge_regressions": True},
        content_type="application/json",
    )
    assert submitted.status_code == 200, submitted.content
    body = submitted.json()
    assert body["status"] == "pending" and body["request_signature"]["meaning"] == "authored"
    assert body["request_signature"]["check"]["status"] == "verified"


# --- signatures ----------------------------------------------------------------------------------


@pytest.fixture
def approved(draft, model_admin, model_admin2) -> PromotionRequest:
    return _in_state(draft, "approved", model_admin2)


def test_an_auditor_cannot_sign(draft, auditor):
    client = login(auditor)
    responses = [
        client.post(reverse("governance:promotion_submit", args=[draft.pk]), {"password": PASSWORD}),
        client.post(
            f"/api/promotion-requests/{draft.pk}/submit/", {"password": PASSWORD}, content_type="application/json"
        ),
    ]
    assert [r.status_code for r in responses] == [403, 403]
    assert not Signature.objects.filter(signer=auditor).exists()


def test_the_lockout_is_an_audit_event_written_exactly_once(draft, model_admin):
    client = login(model_admin)
    for _ in range(SIGNATURE_MAX_FAILURES + 2):  # the last two are refused before any password is checked
        client.post(
            reverse("governance:promotion_submit", args=[draft.pk]),
            {"password": "wrong", "acknowledge_regressions": "on"},
        )
    locked = AuditEvent.objects.filter(action="signature.locked_out", actor=model_admin)
    assert locked.count() == 1
    event = locked.get()
    assert event.after["failures"] == SIGNATURE_MAX_FAILURES
    fifth = AuditEvent.objects.filter(action="signature.failed", actor=model_admin).order_by("seq")[4]
    assert event.seq == fifth.seq + 1 and event.request_id == fifth.request_id  # same transaction
    with pytest.raises(PermissionDenied):
        promotion_submit(request_id=draft.pk, user=model_admin, password=PASSWORD)


def test_a_changed_evaluation_shows_on_the_pages_and_in_the_api(approved, auditor, model_admin):
    assert signature_verify(approved.signature).ok
    detail_url = reverse("governance:promotion_detail", args=[approved.pk])
    assert "Signature verified" in login(auditor).get(detail_url).content.decode()

    evaluation = Evaluation.objects.filter(training_run=approved.model_version.training_run).first()
    evaluation.metrics = {**evaluation.metrics, "accuracy": 0.999}
    evaluation.save(update_fields=["metrics"])

    page = login(auditor).get(detail_url).content.decode()
    assert 'role="alert"' in page and "record changed since signing: hashes differ" in page
    listing = login(auditor).get(reverse("governance:promotion_list", args=[approved.model_version.dataset_id]))
    assert "record changed since signing: hashes differ" in listing.content.decode()
    api = login(model_admin).get(f"/api/promotion-requests/{approved.pk}/").json()
    assert api["signature"]["check"]["status"] == "record_changed" and api["signature"]["check"]["ok"] is False
    assert api["request_signature"]["check"]["status"] == "record_changed"  # it covers the version's record too


def test_a_changed_artifact_hash_is_detected(approved):
    ModelVersion.objects.filter(pk=approved.model_version_id).update(artifact_sha256="0" * 64)
    check = signature_verify(Signature.objects.get(pk=approved.signature_id))
    assert not check.ok and check.words == "record changed since signing: hashes differ"
