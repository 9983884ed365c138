"""Open items always end up showing the current champion's prediction."""

from __future__ import annotations

from unittest import mock

from annotations.models import Item
from governance.models import AuditEvent
from models_app import prediction
from models_app.models import ModelVersion, TrainingRun
from models_app.prediction import predictions_create
from models_app.services import predictions_refresh_sweep, training_run_request
from models_app.training import training_run_execute


def test_refresh_sends_nothing_when_every_open_item_shows_the_champion(trained_dataset):
    with mock.patch("models_app.tasks.predictions_refresh.apply_async") as send:
        assert predictions_refresh_sweep() == 0
    send.assert_not_called()


def test_refresh_sends_a_prediction_task_for_items_left_without_one(trained_dataset):
    Item.objects.filter(dataset=trained_dataset, queue_state="open").update(
        prediction_id=None, predicted_by_version=None
    )
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    with mock.patch("models_app.tasks.predictions_refresh.apply_async") as send:
        assert predictions_refresh_sweep() == 1
    assert send.call_args.kwargs["args"] == [trained_dataset.pk, champion.pk, None]


def test_a_candidates_predictions_are_recorded_but_never_shown_to_reviewers(trained_dataset, model_admin):
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


def test_a_champion_replaced_mid_run_stops_updating_items_at_the_next_chunk(trained_dataset, model_admin):
    """The champion alias moves while v1 is predicting: chunks after the move are recorded, not shown."""
    run = training_run_request(
        dataset=trained_dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    v2 = training_run_execute(run_id=run.pk)
    v1 = ModelVersion.objects.get(dataset=trained_dataset, stage=ModelVersion.Stage.CHAMPION)
    open_items = Item.objects.filter(dataset=trained_dataset, queue_state="open")
    open_ids = list(open_items.order_by("pk").values_list("pk", flat=True))
    assert len(open_ids) == 30
    open_items.update(prediction_id=None, predicted_by_version=None, predicted_label=None, predicted_confidence=None)
    real_copy = prediction._copy_onto_items  # runs once per chunk while v1 is still the champion

    def copy_then_promote_v2(*args, **kwargs):
        changed = real_copy(*args, **kwargs)
        # v1's first chunk is shown; now the alias moves to v2 (the second chunk is already being predicted)
        ModelVersion.objects.filter(pk=v1.pk).update(stage=ModelVersion.Stage.RETIRED)
        ModelVersion.objects.filter(pk=v2.pk).update(stage=ModelVersion.Stage.CHAMPION)
        return changed

    with (
        mock.patch.object(prediction, "CHUNK", 10),
        mock.patch.object(prediction, "_copy_onto_items", copy_then_promote_v2),
    ):
        written = predictions_create(model_version=v1, item_ids=open_ids, update_items=True)

    assert written == 0, "v1 had already predicted these items: its predictions are reused, not duplicated"
    assert v1.predictions.filter(item_id__in=open_ids).count() == 30
    shown = dict(Item.objects.filter(pk__in=open_ids).values_list("pk", "predicted_by_version"))
    assert {shown[pk] for pk in open_ids[:10]} == {1}, "the first chunk ran while v1 was champion"
    assert {shown[pk] for pk in open_ids[10:]} == {None}, "later chunks are not shown once v1 lost the alias"
    events = AuditEvent.objects.filter(action="predictions.created", object_id=str(v1.pk)).order_by("seq")
    assert [e.after["shown_to_reviewers"] for e in events][-3:] == [True, False, False]
