"""The Models page's "train now": what it tells the model admin about the run it queued."""

from __future__ import annotations

from unittest import mock

from django.contrib.messages import get_messages
from django.urls import reverse

from models_app import services
from models_app.models import TrainingRun
from tests.helpers import login


def test_a_run_a_worker_already_took_is_not_said_to_wait_for_itself(trained_dataset, model_admin, broker):
    def request_then_claimed(**kwargs):  # type: ignore[no-untyped-def]
        run = services.training_run_request(**kwargs)
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)  # a quick worker
        return run

    client = login(model_admin)
    with mock.patch("models_app.views.training_run_request", side_effect=request_then_claimed):
        response = client.post(reverse("models_app:train", args=[trained_dataset.pk]), {"reason": "now"})

    said = [str(message) for message in get_messages(response.wsgi_request)]
    run = TrainingRun.objects.order_by("-pk").first()
    assert said == [f"Training run {run.pk} is queued."]
