"""The queue settings page's side forms (stop switch, retention period, legal hold): a refused change is shown
beside its field, with what was typed, on a 400 page, and changes nothing (a message at the top of a long page
went unseen)."""

from __future__ import annotations

from django.urls import reverse

from annotations.models import Dataset
from governance.models import AuditEvent
from tests.conftest import login


def _events() -> int:
    return AuditEvent.objects.count()


def test_a_stop_switch_without_a_reason_says_so_beside_the_reason(trained_dataset, model_admin):
    client = login(model_admin)  # signing in is an event of its own
    before = _events()
    response = client.post(
        reverse("annotations:model_output_switch", args=[trained_dataset.pk]), {"model_output": "off", "reason": " "}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="stop-reason-error"' in html and 'aria-describedby="stop-reason-error"' in html
    assert not Dataset.objects.get(pk=trained_dataset.pk).model_output_off and _events() == before


def test_a_retention_period_that_is_not_a_number_is_refused_beside_the_field_keeping_what_was_typed(
    trained_dataset, model_admin
):
    client = login(model_admin)  # signing in is an event of its own
    before = _events()
    response = client.post(
        reverse("annotations:retention_period", args=[trained_dataset.pk]), {"retention_days": "ninety"}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="retention-days-error"' in html and "is not a whole number of days" in html
    assert 'value="ninety"' in html
    assert Dataset.objects.get(pk=trained_dataset.pk).retention_days is None and _events() == before


def test_a_legal_hold_without_a_reason_is_refused_beside_the_reason(trained_dataset, model_admin):
    client = login(model_admin)  # signing in is an event of its own
    before = _events()
    response = client.post(
        reverse("annotations:legal_hold", args=[trained_dataset.pk]), {"legal_hold": "place", "reason": ""}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="hold-reason-error"' in html and 'aria-invalid="true"' in html
    assert not Dataset.objects.get(pk=trained_dataset.pk).on_legal_hold and _events() == before
