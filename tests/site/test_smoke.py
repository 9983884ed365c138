from django.urls import reverse

from annotations.models import Item
from tests.conftest import login


def test_trained_dataset_has_predictions_on_open_items(trained_dataset):
    open_items = Item.objects.filter(dataset=trained_dataset, queue_state=Item.QueueState.OPEN)
    assert open_items.count() == 30
    assert not open_items.filter(prediction_id__isnull=True).exists()


def test_reviewer_sees_a_card(trained_dataset, reviewer):
    response = login(reviewer).get(reverse("annotations:review", args=[trained_dataset.pk]))
    assert response.status_code == 200
    assert b"Model v1 predicts" in response.content
