"""Open items always end up showing the current champion's prediction."""

from __future__ import annotations

from unittest import mock

from annotations.models import Item
from models_app.models import ModelVersion, TrainingRun
from models_app.prediction import predictions_create
from models_app.services import predictions_refresh_stale, training_run_request
from models_app.training import training_run_execute


def test_refresh_sends_nothing_when_every_open_item_shows_the_champion(trained_dataset):
    with mock.patch("models_app.tasks.predict_items.apply_async") as send:
        assert predictions_refresh_stale() == 0
    send.assert_not_called()


def test_refresh_sends_a_prediction_task_for_items_left_without_one(trained_dataset):
    Item.objects.filter(dataset=trained_dataset, queue_state="open").update(
        prediction_id=None, predicted_by_version=None
    )
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    with mock.patch("models_app.tasks.predict_items.apply_async") as send:
        assert predictions_refresh_stale() == 1
    assert send.call_args.kwargs["args"] == [trained_dataset.pk, champion.pk]


def test_a_version_that_lost_the_champion_alias_mid_run_stops_updating_items(trained_dataset, model_admin):
    run = training_run_request(
        dataset=trained_dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    candidate = training_run_execute(run_id=run.pk)
    open_ids = list(Item.objects.filter(dataset=trained_dataset, queue_state="open").values_list("pk", flat=True))
    # v2 is not the champion: its predictions are recorded but never shown to reviewers.
    predictions_create(model_version=candidate, item_ids=open_ids, update_items=True)
    shown = set(Item.objects.filter(pk__in=open_ids).values_list("predicted_by_version", flat=True))
    assert shown == {1}
    assert candidate.predictions.count() == len(open_ids)
