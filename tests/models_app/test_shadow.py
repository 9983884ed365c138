"""Shadow mode (issue 9, point 10): a candidate predicts beside the champion, is never shown, is scored afterwards,
and its disagreement with the champion orders the workbench's disagreement queue."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotations.models import Item, QueueStrategy
from annotations.queue import queue_next_item
from governance.models import AuditEvent
from models_app.models import ModelVersion, Prediction
from models_app.prediction import predictions_refresh
from models_app.shadow import shadow_report, shadow_start, shadow_stop
from tests.conftest import login, synthetic_rows
from tests.helpers import candidate_train, review_next


@pytest.fixture
def shadow(trained_dataset, model_admin, django_capture_on_commit_callbacks) -> ModelVersion:
    version = candidate_train(trained_dataset, requested_by=model_admin, reason="a challenger")
    with django_capture_on_commit_callbacks(execute=True):  # the task that makes its first predictions
        shadow_start(model_version=version, user=model_admin, reason="see how it does on new cases")
    return ModelVersion.objects.get(pk=version.pk)


def _open(dataset):  # type: ignore[no-untyped-def]
    return Item.objects.filter(dataset=dataset, queue_state=Item.QueueState.OPEN)


def test_a_shadow_predicts_every_open_item_unseen_and_scores_its_disagreement(trained_dataset, shadow):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    items = list(_open(trained_dataset))
    assert items and Prediction.objects.filter(model_version=shadow, item__in=items).count() == len(items)
    for item in items:  # what reviewers see is still the champion's, and only the champion's
        assert item.predicted_by_version == champion.version
        assert Prediction.objects.get(pk=item.prediction_id).model_version_id == champion.pk
        mine = Prediction.objects.get(model_version=shadow, item=item).probabilities
        expected = 0.5 * sum(abs(item.predicted_probabilities[c] - mine[c]) for c in shadow.class_names)
        assert item.disagreement_score == pytest.approx(expected, abs=1e-5)
    assert AuditEvent.objects.filter(action="model_version.shadow_started", object_id=str(shadow.pk)).exists()


def test_the_disagreement_queue_serves_the_item_the_two_models_disagree_on_most(trained_dataset, shadow, reviewer):
    trained_dataset.queue_strategy = QueueStrategy.DISAGREEMENT
    trained_dataset.save(update_fields=["queue_strategy"])
    predictions_refresh(dataset_id=trained_dataset.pk)  # rescoring follows a refresh (here: nothing new to predict)
    from models_app.shadow import disagreement_write

    disagreement_write(shadow=shadow, item_ids=list(_open(trained_dataset).values_list("pk", flat=True)))
    most = _open(trained_dataset).order_by("-disagreement_score", "pk").first()

    served = queue_next_item(dataset=trained_dataset, reviewer=reviewer)

    assert served is not None and served.item.pk == most.pk
    assert served.item.priority_strategy == "disagreement"
    assert served.item.queue_priority == pytest.approx(1 - most.disagreement_score, abs=1e-6)


def test_new_items_are_predicted_by_the_shadow_after_the_champion(trained_dataset, shadow, import_rows):
    batch = import_rows(synthetic_rows(6, start=700, labelled=False), name="more.csv")
    predictions_refresh(dataset_id=trained_dataset.pk, batch_id=batch.pk)
    new = Item.objects.filter(batch=batch)
    assert Prediction.objects.filter(model_version=shadow, item__in=new).count() == 6
    assert not new.filter(disagreement_score__isnull=True).exists()


def test_the_report_counts_who_was_right_against_the_reviewers(trained_dataset, shadow, reviewer):
    answered = [review_next(trained_dataset, reviewer, accept=i % 2 == 0) for i in range(6)]

    report = shadow_report(model_version=shadow)

    assert report.compared == 6
    truth = {r.item_id: r.label_id for r in answered}
    shown = {r.item_id: r.shown_label_id for r in answered}
    theirs = dict(Prediction.objects.filter(model_version=shadow, item_id__in=truth).values_list("item_id", "label_id"))
    assert report.champion_right == sum(shown[i] == truth[i] for i in truth)
    assert report.shadow_right == sum(theirs[i] == truth[i] for i in truth)
    assert report.differ == sum(theirs[i] != shown[i] for i in truth)
    assert report.differ_champion_right + report.differ_shadow_right + report.differ_neither == report.differ


def test_only_a_candidate_runs_in_shadow_and_only_one_at_a_time(trained_dataset, shadow, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    with pytest.raises(ValidationError, match="Only a candidate"):
        shadow_start(model_version=champion, user=model_admin, reason="why not")
    with pytest.raises(ValidationError, match="Say why"):
        shadow_start(model_version=shadow, user=model_admin, reason=" ")

    other = candidate_train(trained_dataset, requested_by=model_admin, reason="another challenger")
    shadow_start(model_version=other, user=model_admin, reason="this one instead")
    assert list(ModelVersion.objects.filter(dataset=trained_dataset, shadow_since__isnull=False)) == [other]
    assert AuditEvent.objects.filter(action="model_version.shadow_stopped", object_id=str(shadow.pk)).exists()
    shadow_stop(model_version=other, user=model_admin, reason="enough")
    with pytest.raises(ValidationError, match="not in shadow"):
        shadow_stop(model_version=other, user=model_admin, reason="again")


def test_the_models_page_shows_the_shadow_and_only_admins_change_it(trained_dataset, shadow, auditor, reviewer):
    url = reverse("models_app:overview", args=[trained_dataset.pk])
    page = login(auditor).get(url).content.decode()
    assert f"Shadow: v{shadow.version} beside the champion" in page and "Put in shadow" not in page
    change = reverse("models_app:shadow_change", args=[shadow.pk])
    assert login(auditor).post(change, {"action": "stop"}).status_code == 403
    assert login(reviewer).post(change, {"action": "stop"}).status_code == 403
    assert ModelVersion.objects.get(pk=shadow.pk).shadow_since is not None


def test_the_api_stops_the_shadow_and_reports(trained_dataset, shadow, model_admin, auditor):
    report = login(auditor).get(f"/api/model-versions/{shadow.pk}/shadow-report/")
    assert report.status_code == 200 and report.json()["in_shadow_since"] is not None
    stopped = login(model_admin).post(
        f"/api/model-versions/{shadow.pk}/shadow/", {"action": "stop"}, content_type="application/json"
    )
    assert stopped.status_code == 200 and stopped.json()["in_shadow_since"] is None
