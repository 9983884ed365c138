"""Promotion against the *current* champion: regressions and retired versions are warned of,
on the request and on the approval, and need an explicit acknowledgement (issue 6, defect 13)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from governance.models import AuditEvent, PromotionRequest, Signature
from governance.promotions import promotion_decide, promotion_request_create, promotion_warnings
from models_app.models import Evaluation, ModelVersion, TrainingRun
from models_app.selectors import NOT_COMPARABLE, champion_comparison
from tests.conftest import PASSWORD, login


@pytest.fixture
def champion(trained_dataset) -> ModelVersion:
    return ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)


@pytest.fixture
def candidate(second_version, champion) -> ModelVersion:
    """v2, trained on the same data as the v1 champion and measured on the same holdout (tests/world.py)."""
    version = second_version
    assert version is not None
    return version


def _make_worse(version: ModelVersion, champion: ModelVersion, *, by: float = 0.2) -> None:
    """Lower the version's recorded holdout accuracy well below the champion's on the same holdout."""
    champion_accuracy = champion_comparison(version).rows[0].reference
    assert champion_accuracy is not None
    worse = max(champion_accuracy - by, 0.0)
    evaluation = Evaluation.objects.get(model_version=version, role=Evaluation.Role.CANDIDATE)
    evaluation.metrics = {**evaluation.metrics, "accuracy": worse}
    evaluation.save(update_fields=["metrics"])
    version.metrics = {**version.metrics, "holdout": {**version.metrics["holdout"], "accuracy": worse}}
    version.save(update_fields=["metrics"])


@pytest.fixture
def worse(candidate, champion) -> ModelVersion:
    _make_worse(candidate, champion)
    return candidate


def _last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- the comparison is with the current champion, on the same holdout ----------------


def test_a_version_is_compared_with_the_current_champion_on_the_same_holdout(candidate, champion):
    comparison = champion_comparison(candidate)

    assert comparison.champion == champion
    assert comparison.compared
    assert all(row.reference is not None and row.verdict for row in comparison.rows)
    assert comparison.warnings() == []


def test_a_worse_version_is_marked_with_words_and_a_down_triangle(worse, champion):
    comparison = champion_comparison(worse)

    [regression] = comparison.regressions
    assert (regression.metric.key, regression.symbol, regression.words) == ("accuracy", "▼", "worse")
    assert comparison.summary_symbol == "▼"
    assert comparison.summary_words.startswith("worse on accuracy")
    assert comparison.warnings() == [
        regression.sentence(
            candidate_name=f"v{worse.version}", reference_name=f"the current champion v{champion.version}"
        )
    ]


def test_versions_measured_on_different_holdouts_are_not_compared(candidate, champion):
    Evaluation.objects.filter(model_version=candidate, role=Evaluation.Role.CANDIDATE).update(holdout_hash="0" * 64)

    comparison = champion_comparison(candidate)

    assert not comparison.compared
    assert comparison.not_compared == NOT_COMPARABLE
    assert all(row.reference is None and row.verdict is None for row in comparison.rows)


def test_the_comparison_follows_the_champion_of_today_not_of_training_time(trained_dataset, candidate, champion):
    """v3 is trained while v1 is champion; once v2 is champion, v3 is compared with v2."""
    from models_app.services import champion_set, training_run_request
    from models_app.training import training_run_execute

    run = training_run_request(
        dataset=trained_dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=None, reason="v3", dispatch=False
    )
    v3 = training_run_execute(run_id=run.pk)
    from django.db import transaction

    with transaction.atomic():
        champion_set(model_version=candidate, actor=None, reason="test")

    comparison = champion_comparison(v3)

    assert comparison.champion == candidate
    assert comparison.compared  # v2's own run measured it on the same holdout


def test_the_run_page_shows_the_current_champion_and_the_regression(worse, champion, model_admin):
    response = login(model_admin).get(reverse("models_app:run_detail", args=[worse.training_run_id]))

    page = response.content.decode()
    assert response.status_code == 200
    assert f"Current champion v{champion.version}" in page
    assert "▼</span> worse" in page
    assert "higher is better" in page and "lower is better" in page
    assert "Champion at training time" not in page


def test_the_models_page_names_the_current_champion_and_marks_each_version(worse, champion, model_admin):
    response = login(model_admin).get(reverse("models_app:overview", args=[worse.dataset_id]))

    page = response.content.decode()
    assert f"Current champion: <strong>v{champion.version}</strong>" in page
    assert "worse on accuracy" in page
    assert "the current champion" in page


def test_the_pages_say_not_comparable_rather_than_compare_different_holdouts(candidate, model_admin):
    Evaluation.objects.filter(model_version=candidate, role=Evaluation.Role.CANDIDATE).update(holdout_hash="0" * 64)

    run_page = login(model_admin).get(reverse("models_app:run_detail", args=[candidate.training_run_id]))
    list_page = login(model_admin).get(reverse("governance:promotion_list", args=[candidate.dataset_id]))

    assert NOT_COMPARABLE in run_page.content.decode()
    assert NOT_COMPARABLE in list_page.content.decode()


# --- the request ------------------------------------------------------------------


def test_requesting_a_worse_version_without_the_acknowledgement_is_refused_and_changes_nothing(worse, model_admin):
    seq = _last_seq()

    with pytest.raises(ValidationError) as refused:
        promotion_request_create(password=PASSWORD, model_version=worse, user=model_admin, reason="try it")

    assert "acknowledge_regressions" in refused.value.message_dict
    assert "worse than the current champion" in refused.value.message_dict["acknowledge_regressions"][0]
    assert not PromotionRequest.objects.filter(model_version=worse).exists()
    assert _last_seq() == seq


def test_a_worse_version_can_be_requested_with_the_acknowledgement_and_the_warnings_are_audited(worse, model_admin):
    request = promotion_request_create(
        password=PASSWORD,
        model_version=worse,
        user=model_admin,
        reason="better on recent data",
        acknowledge_regressions=True,
    )

    event = AuditEvent.objects.get(action="promotion.requested", object_id=str(request.pk))
    assert event.after["warnings"] == promotion_warnings(worse)
    assert event.after["warnings"] and "worse than the current champion" in event.after["warnings"][0]
    assert event.after["warnings_acknowledged"] is True


def test_a_retired_version_is_warned_of(candidate, model_admin):
    ModelVersion.objects.filter(pk=candidate.pk).update(stage=ModelVersion.Stage.RETIRED)
    candidate.refresh_from_db()

    with pytest.raises(ValidationError, match="is retired"):
        promotion_request_create(password=PASSWORD, model_version=candidate, user=model_admin, reason="bring it back")


def test_a_version_no_worse_than_the_champion_needs_no_acknowledgement(candidate, model_admin):
    request = promotion_request_create(
        password=PASSWORD, model_version=candidate, user=model_admin, reason="same or better"
    )

    event = AuditEvent.objects.get(action="promotion.requested", object_id=str(request.pk))
    assert event.after["warnings"] == []


def test_the_request_form_shows_the_warning_and_without_the_tick_gives_a_field_error(worse, model_admin):
    client = login(model_admin)
    url = reverse("governance:promotion_list", args=[worse.dataset_id])

    page = client.get(url).content.decode()
    assert "worse than the current champion" in page
    assert 'name="acknowledge_regressions"' in page

    response = client.post(
        reverse("governance:promotion_request", args=[worse.dataset_id]),
        {"model_version": worse.pk, "reason": "my reason stays"},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="pr-ack-error"' in body and 'aria-describedby="pr-ack-error"' in body
    assert "my reason stays" in body
    assert not PromotionRequest.objects.filter(model_version=worse).exists()

    response = client.post(
        reverse("governance:promotion_request", args=[worse.dataset_id]),
        {"model_version": worse.pk, "reason": "seen it", "acknowledge_regressions": "on", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert PromotionRequest.objects.filter(model_version=worse).exists()


def test_the_api_answers_400_with_a_field_error_without_the_acknowledgement(worse, model_admin):
    url = f"/api/model-versions/{worse.pk}/promotion-requests/"
    client = login(model_admin)

    refused = client.post(url, {"reason": "try"}, content_type="application/json")
    accepted = client.post(
        url, {"reason": "try", "acknowledge_regressions": True, "password": PASSWORD}, content_type="application/json"
    )

    assert refused.status_code == 400
    assert "acknowledge_regressions" in refused.json()
    assert accepted.status_code == 201


# --- the decision -----------------------------------------------------------------


@pytest.fixture
def pending_worse(worse, model_admin) -> PromotionRequest:
    return promotion_request_create(
        password=PASSWORD, model_version=worse, user=model_admin, reason="seen", acknowledge_regressions=True
    )


def test_approving_a_worse_version_without_the_acknowledgement_is_refused_and_costs_no_try(
    pending_worse, model_admin2, champion
):
    seq = _last_seq()

    with pytest.raises(ValidationError) as refused:
        promotion_decide(request_id=pending_worse.pk, user=model_admin2, approve=True, password=PASSWORD, reason="ok")

    assert "acknowledge_regressions" in refused.value.message_dict
    assert _last_seq() == seq  # not even a failed signature
    pending_worse.refresh_from_db()
    assert pending_worse.status == PromotionRequest.Status.PENDING
    assert ModelVersion.objects.get(pk=champion.pk).is_champion


def test_approving_a_worse_version_with_the_acknowledgement_records_the_warnings(pending_worse, model_admin2):
    promotion_decide(
        request_id=pending_worse.pk,
        user=model_admin2,
        approve=True,
        password=PASSWORD,
        reason="seen the drop",
        acknowledge_regressions=True,
    )

    event = AuditEvent.objects.get(action="promotion.approved", object_id=str(pending_worse.pk))
    assert event.after["warnings"] and "worse than the current champion" in event.after["warnings"][0]
    assert event.after["warnings_acknowledged"] is True


def test_rejecting_a_worse_version_needs_no_acknowledgement(pending_worse, model_admin2):
    promotion_decide(request_id=pending_worse.pk, user=model_admin2, approve=False, password=PASSWORD, reason="worse")

    pending_worse.refresh_from_db()
    assert pending_worse.status == PromotionRequest.Status.REJECTED


def test_the_decision_page_shows_the_warnings_above_the_signature_form(pending_worse, model_admin2):
    client = login(model_admin2)

    page = client.get(reverse("governance:promotion_detail", args=[pending_worse.pk])).content.decode()

    assert page.index("Warnings before you approve") < page.index('name="password"')
    assert "worse than the current champion" in page

    response = client.post(
        reverse("governance:promotion_decide", args=[pending_worse.pk]),
        {"decision": "approve", "password": PASSWORD, "reason": "ok"},
    )
    assert response.status_code == 400
    assert 'id="decide-ack-error"' in response.content.decode()
    assert not Signature.objects.filter(
        record_type="model_version", record_id=str(pending_worse.model_version_id)
    ).exists()

    response = client.post(
        reverse("governance:promotion_decide", args=[pending_worse.pk]),
        {"decision": "approve", "password": PASSWORD, "reason": "ok", "acknowledge_regressions": "on"},
    )
    assert response.status_code == 302
    pending_worse.refresh_from_db()
    assert pending_worse.status == PromotionRequest.Status.APPROVED


def test_the_decision_api_answers_400_without_the_acknowledgement(pending_worse, model_admin2):
    url = f"/api/promotion-requests/{pending_worse.pk}/decision/"
    client = login(model_admin2)

    refused = client.post(url, {"decision": "approve", "password": PASSWORD}, content_type="application/json")
    accepted = client.post(
        url,
        {"decision": "approve", "password": PASSWORD, "acknowledge_regressions": True},
        content_type="application/json",
    )

    assert refused.status_code == 400
    assert "acknowledge_regressions" in refused.json()
    assert accepted.status_code == 200


def test_the_warnings_are_worked_out_again_at_decision_time(candidate, champion, model_admin, model_admin2):
    """Requested while no worse; by the time of the approval the comparison says worse: it warns."""
    request = promotion_request_create(password=PASSWORD, model_version=candidate, user=model_admin, reason="fine")
    assert promotion_warnings(candidate) == []
    _make_worse(candidate, champion)

    with pytest.raises(ValidationError, match="worse than the current champion"):
        promotion_decide(request_id=request.pk, user=model_admin2, approve=True, password=PASSWORD, reason="ok")
