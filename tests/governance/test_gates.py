"""Promotion gates (issue 10, point 4): judged against the current champion, stored with the decision; a failed
gate blocks an ordinary approval and can only be overridden by a signed approval with a reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from governance.gates import gates_evaluate, promotion_gates_update
from governance.models import AuditEvent, PromotionGates, PromotionRequest, Signature
from governance.promotions import promotion_decide, promotion_request_create
from models_app.models import ModelVersion
from tests.conftest import PASSWORD, login
from tests.helpers import candidate_train

_STRICT = {
    "min_holdout_accuracy": 1.01 - 0.01,  # 1.0: only a perfect candidate passes
    "max_regression_points": 2.0,
    "max_subgroup_regression_points": 5.0,
    "max_ece": 0.0,  # no calibration error at all: fails any real model
    "paired_test_not_worse": True,
}


@pytest.fixture
def pending(trained_dataset, model_admin) -> PromotionRequest:
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="gates")
    return promotion_request_create(
        password=PASSWORD, model_version=version, user=model_admin, reason="try", acknowledge_regressions=True
    )


def test_default_gates_judge_the_candidate_against_the_current_champion(trained_dataset, pending):
    results = gates_evaluate(pending.model_version)
    names = [r["gate"] for r in results]
    assert "no regression overall" in names and "paired test" in names
    overall = next(r for r in results if r["gate"] == "no regression overall")
    assert "95% interval" in overall["detail"]


def test_a_failed_gate_blocks_approval_until_an_override_is_signed_with_a_reason(
    trained_dataset, pending, model_admin, model_admin2
):
    promotion_gates_update(dataset=trained_dataset, user=model_admin, values=_STRICT)
    failed = [r for r in gates_evaluate(pending.model_version) if not r["passed"]]
    assert "calibration" in [r["gate"] for r in failed]

    with pytest.raises(ValidationError) as refused:
        promotion_decide(request_id=pending.pk, user=model_admin2, approve=True, password=PASSWORD, reason="ok")
    assert "calibration" in refused.value.message_dict["override_reason"][0]
    assert PromotionRequest.objects.get(pk=pending.pk).status == "pending"
    assert not AuditEvent.objects.filter(action="signature.failed").exists()  # no signing try was spent

    decided = promotion_decide(
        request_id=pending.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="ok",
        override_reason="the ECE limit is set to zero for this test; the clinicians accept v2",
    )
    assert decided.status == "approved" and decided.override_reason.startswith("the ECE limit")
    assert Signature.objects.get(pk=decided.signature_id).meaning == Signature.Meaning.OVERRIDE
    assert [g["gate"] for g in decided.gate_results if not g["passed"]] == [r["gate"] for r in failed]
    event = AuditEvent.objects.get(action="promotion.approved", object_id=str(pending.pk))
    assert event.after["gates_overridden"] is True and event.after["override_reason"] == decided.override_reason
    assert ModelVersion.objects.get(pk=pending.model_version_id).stage == "champion"


def test_a_rejection_needs_no_override_and_keeps_the_gates_it_was_judged_by(
    trained_dataset, pending, model_admin, model_admin2
):
    promotion_gates_update(dataset=trained_dataset, user=model_admin, values=_STRICT)
    decided = promotion_decide(
        request_id=pending.pk, user=model_admin2, approve=False, password=PASSWORD, reason="fails calibration"
    )
    assert decided.status == "rejected" and decided.gate_results and decided.override_reason == ""


def test_the_pages_show_and_set_the_gates_for_model_admins_only(trained_dataset, pending, model_admin, auditor):
    url = reverse("governance:promotion_gates", args=[trained_dataset.pk])
    form = {
        "min_holdout_accuracy": "",
        "max_regression_points": "3",
        "max_subgroup_regression_points": "5",
        "max_ece": "0",
    }
    assert login(auditor).post(url, form).status_code == 403
    assert login(model_admin).post(url, {**form, "paired_test_not_worse": "on"}).status_code == 302
    gates = PromotionGates.objects.get(dataset=trained_dataset)
    assert (gates.max_regression_points, gates.max_ece) == (3.0, 0.0)
    assert AuditEvent.objects.filter(action="promotion_gates.updated").exists()

    detail = login(auditor).get(reverse("governance:promotion_detail", args=[pending.pk])).content.decode()
    assert "Promotion gates, against the current champion" in detail and 'data-gate-passed="no"' in detail

    bad = login(model_admin).post(url, {**form, "max_ece": "2"})
    assert bad.status_code == 302 and PromotionGates.objects.get(dataset=trained_dataset).max_ece == 0.0


def test_a_champion_that_moves_before_the_lock_is_judged_again_outside_it(
    trained_dataset, pending, model_admin, model_admin2, monkeypatch
):
    """The gates predict the holdout: never while the dataset is locked, unless the champion keeps moving."""
    from django.db import transaction

    from governance import promotions
    from models_app.services import champion_set

    other = candidate_train(trained_dataset, requested_by=model_admin, reason="lands while the decision is judged")
    calls: list[tuple[int | None, bool]] = []
    locked = [False]
    real_gates, real_locked = promotions.gates_evaluate, promotions._decide_locked

    def gates_spy(version, *, champion):  # type: ignore[no-untyped-def]
        calls.append((champion and champion.pk, locked[0]))
        if len(calls) == 1:  # another decision lands between this judging and the lock
            with transaction.atomic():
                champion_set(model_version=other, actor=model_admin, reason="landed meanwhile")
        return real_gates(version, champion=champion)

    def locked_spy(**kwargs):  # type: ignore[no-untyped-def]
        locked[0] = True
        try:
            return real_locked(**kwargs)
        finally:
            locked[0] = False

    monkeypatch.setattr(promotions, "gates_evaluate", gates_spy)
    monkeypatch.setattr(promotions, "_decide_locked", locked_spy)
    first_champion = promotions.current_champion(trained_dataset.pk)

    decided = promotion_decide(
        request_id=pending.pk, user=model_admin2, approve=False, password=PASSWORD, reason="judged on the new one"
    )

    assert calls == [(first_champion.pk, False), (other.pk, False)]
    assert decided.status == "rejected"
    assert decided.gate_results == real_gates(pending.model_version, champion=other)
    # The first, abandoned attempt wrote nothing: one decision, one signature.
    assert AuditEvent.objects.filter(action="promotion.rejected", object_id=str(pending.pk)).count() == 1
