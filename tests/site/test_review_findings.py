"""Bad input found in review: each gets a clear error and changes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from annotations.models import ImportBatch, Item
from annotations.services import ImportRejected
from governance.promotions import promotion_request_create
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.services import retraining_policy_update, training_run_request
from models_app.training import training_run_execute
from tests.conftest import synthetic_rows


def _import(dataset, user, data: bytes):  # type: ignore[no-untyped-def]
    from annotations.services import import_batch_create

    return import_batch_create(dataset=dataset, user=user, file_name="f.csv", data=data, purpose="review")


def test_a_nul_byte_is_reported_with_its_line_and_nothing_is_written(dataset, model_admin):
    data = b"external_id,radius,texture,lobes\nA1,10,15,2\nA\x002,11,15,2\n"
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, data)
    error = rejected.value.result.errors[0]
    assert error.line == 3 and "NUL byte" in error.reason
    assert not Item.objects.exists() and not ImportBatch.objects.exists()


def test_an_out_of_range_observed_at_is_a_row_error(dataset, model_admin):
    data = b"external_id,radius,texture,lobes,observed_at\nA1,10,15,2,0001-01-01T00:00:00+01:00\n"
    with pytest.raises(ImportRejected) as rejected:
        _import(dataset, model_admin, data)
    error = rejected.value.result.errors[0]
    assert (error.line, error.column, error.reason) == (2, "observed_at", "Date is out of range.")
    assert not Item.objects.exists()


def test_a_huge_retraining_threshold_is_refused_and_the_policy_kept(dataset, model_admin):
    with pytest.raises(ValidationError, match="between 1 and"):
        retraining_policy_update(dataset=dataset, user=model_admin, enabled=True, new_gold_labels=10**20)
    assert RetrainingPolicy.objects.get(dataset=dataset).new_gold_labels == 5


def test_a_version_never_evaluated_on_a_holdout_cannot_be_promoted(dataset, model_admin, import_rows):
    import_rows(synthetic_rows(20))  # labelled, but no holdout file
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    version = training_run_execute(run_id=run.pk)
    assert version is not None and version.metrics["holdout"] == {"n": 0}
    with pytest.raises(ValidationError, match="not evaluated on a holdout"):
        promotion_request_create(model_version=version, user=model_admin, reason="please")


def test_models_and_promotion_pages_render_a_version_without_holdout_metrics(dataset, model_admin, import_rows):
    from tests.conftest import login

    import_rows(synthetic_rows(20))
    run = training_run_request(
        dataset=dataset, trigger=TrainingRun.Trigger.MANUAL, requested_by=model_admin, dispatch=False
    )
    training_run_execute(run_id=run.pk)
    client = login(model_admin)
    assert client.get(f"/models/datasets/{dataset.pk}/").status_code == 200
    assert client.get(f"/governance/datasets/{dataset.pk}/promotions/").status_code == 200


def test_health_does_not_tell_anonymous_callers_why_the_database_failed(db):
    from unittest import mock

    with mock.patch(
        "workflow_site.health.connection.cursor", side_effect=RuntimeError("role loupe_svc does not exist")
    ):
        response = Client().get("/health/")
    assert response.status_code == 503
    assert "loupe_svc" not in response.content.decode()
    assert response.json()["database"] == {"ok": False, "error": "unreachable (see the server log)"}
