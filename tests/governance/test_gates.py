"""Promotion gates (issue 10, point 4): judged against the current champion, stored with the decision; a failed
gate blocks an ordinary approval and can only be overridden by a signed approval with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Feature
from governance.gates import gates_evaluate, promotion_gates_update
from governance.models import AuditEvent, PromotionGates, PromotionRequest, Signature
from governance.promotions import promotion_decide, promotion_request_create
from models_app.ml.evaluation import evaluate
from models_app.ml.paired import compare_paired
from models_app.models import Evaluation, ModelVersion
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


# --- subgroup gates: the paired interval of the difference on the subgroup's rows ----------------------------------


def _stored_evaluations(version: ModelVersion, **sites: tuple[int, int, int, int]) -> dict:
    """Store real evaluations of two binary models on a holdout split by site as `version`'s run's (its champion,
    still live, unchanged), so the gates judge them. Per site: rows both models get right, only the champion, only
    the candidate, neither. Returns the candidate's and the champion's figures."""
    y, champion, candidate, site = [], [], [], []
    for name, counts in sites.items():
        for (champion_right, candidate_right), count in zip(((1, 1), (1, 0), (0, 1), (0, 0)), counts, strict=True):
            for _ in range(count):
                yes = len(y) % 2 == 1
                y.append("yes" if yes else "no")
                champion.append([0.2, 0.8] if yes == bool(champion_right) else [0.8, 0.2])
                candidate.append([0.3, 0.7] if yes == bool(candidate_right) else [0.7, 0.3])
                site.append(name)
    groups, classes = {"site": site}, ["no", "yes"]
    figures = {
        "candidate": evaluate(y, np.array(candidate), classes, groups=groups, seed=0),
        "champion": evaluate(y, np.array(champion), classes, groups=groups, seed=0),
    }
    figures["candidate"]["paired"] = compare_paired(
        y, np.array(champion), np.array(candidate), classes, groups=groups, seed=0
    )
    for role, metrics in figures.items():
        assert Evaluation.objects.filter(training_run=version.training_run, role=role).update(metrics=metrics) == 1
    return figures


def _subgroup_gate(version: ModelVersion, value: str) -> dict:
    return next(r for r in gates_evaluate(version) if r["gate"] == f"subgroup site = {value}")


def _gates_with_subgroup_tolerance(dataset, user, points: float) -> None:
    promotion_gates_update(
        dataset=dataset,
        user=user,
        values={"max_regression_points": 2.0, "max_subgroup_regression_points": points, "paired_test_not_worse": True},
    )


def test_a_subgroup_fails_when_the_paired_interval_is_wholly_below_the_tolerance_though_its_own_reaches_the_champion(
    trained_dataset, pending, model_admin
):
    _gates_with_subgroup_tolerance(trained_dataset, model_admin, 1.0)
    # Site B: the candidate loses 16 of the champion's 220 right rows and gains none (55% -> 51% on 400 rows).
    figures = _stored_evaluations(pending.model_version, A=(50, 0, 0, 10), B=(204, 16, 0, 180))
    own = figures["candidate"]["subgroups"]["site"]["B"]["accuracy_ci"]
    champions = figures["champion"]["subgroups"]["site"]["B"]["accuracy"]
    assert own[1] >= champions - 0.01  # the candidate's own interval reaches the champion's point estimate, less 1

    gate = _subgroup_gate(pending.model_version, "B")

    low, high = figures["candidate"]["paired"]["subgroups"]["site"]["B"]["accuracy_difference_ci"]
    assert high < -0.01 and gate["passed"] is False and gate["judged"] is True
    assert gate["detail"] == (
        f"candidate 51.0% against the champion's 55.0% on the same 400 holdout rows: accuracy difference "
        f"-4.0 points (95% interval {low * 100:+.1f} points to {high * 100:+.1f} points); fails when the whole "
        "interval is below −1 points"
    )
    assert _subgroup_gate(pending.model_version, "A")["passed"] is True


def test_a_subgroup_passes_when_the_paired_interval_reaches_above_the_tolerance_though_its_own_falls_short(
    trained_dataset, pending, model_admin
):
    _gates_with_subgroup_tolerance(trained_dataset, model_admin, 2.0)
    # Site B: the two models disagree on 210 of 300 rows, the candidate right on 90 of them, the champion on 120.
    figures = _stored_evaluations(pending.model_version, B=(60, 120, 90, 30))
    own = figures["candidate"]["subgroups"]["site"]["B"]["accuracy_ci"]
    champions = figures["champion"]["subgroups"]["site"]["B"]["accuracy"]
    assert own[1] < champions - 0.02  # the old rule (own interval against the champion's point) would have failed

    gate = _subgroup_gate(pending.model_version, "B")

    low, high = figures["candidate"]["paired"]["subgroups"]["site"]["B"]["accuracy_difference_ci"]
    assert low < -0.02 <= high and gate["passed"] is True and gate["judged"] is True
    assert "accuracy difference -10.0 points" in gate["detail"] and "on the same 300 holdout rows" in gate["detail"]


def test_a_subgroup_too_small_to_judge_is_listed_as_not_judged_and_blocks_nothing(trained_dataset, model_admin):
    Feature.objects.filter(dataset=trained_dataset, name="lobes").update(is_sensitive=True)
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="small subgroups")
    stored = Evaluation.objects.get(training_run=version.training_run, role="candidate").metrics
    lobes = stored["paired"]["subgroups"]["lobes"]  # 20 holdout rows: every group is under the minimum size
    assert lobes and all(g["accuracy_difference_ci"] is None for g in lobes.values())

    results = gates_evaluate(version)

    subgroups = [r for r in results if r["gate"].startswith("subgroup lobes = ")]
    assert [r["gate"] for r in subgroups] == [f"subgroup lobes = {value}" for value in lobes]
    for result in subgroups:
        assert result["passed"] is True and result["judged"] is False
        assert result["detail"] == "not judged: fewer than 30 rows on the holdout"


def test_a_stored_evaluation_without_paired_subgroup_intervals_cannot_judge_a_subgroup_and_says_so(
    trained_dataset, pending, model_admin, auditor
):
    _gates_with_subgroup_tolerance(trained_dataset, model_admin, 5.0)
    figures = _stored_evaluations(pending.model_version, A=(50, 0, 0, 10), C=(8, 1, 0, 1))
    old = figures["candidate"]
    del old["paired"]["subgroups"]  # as stored before the paired subgroup intervals were
    Evaluation.objects.filter(training_run=pending.model_version.training_run, role="candidate").update(metrics=old)

    a, c = _subgroup_gate(pending.model_version, "A"), _subgroup_gate(pending.model_version, "C")

    assert (a["passed"], a["judged"]) == (False, False)
    assert a["detail"].startswith("cannot be judged from the stored evaluation: it has no paired interval")
    assert "this subgroup's 60 holdout rows" in a["detail"]
    assert (c["passed"], c["judged"]) == (True, False) and c[
        "detail"
    ] == "not judged: fewer than 30 rows on the holdout"
    page = login(auditor).get(reverse("governance:promotion_detail", args=[pending.pk])).content.decode()
    assert "cannot be judged from the stored evaluation" in page and ">not judged</td>" in page
