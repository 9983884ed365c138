"""A model version's signatures are shown wherever the version is (issue 10, point 3): the Models page shows
the champion's, a run's page its candidate's, each checked against the version as it is now."""

from __future__ import annotations

from django.urls import reverse

from models_app.models import Evaluation, ModelVersion
from tests.conftest import login


def test_the_models_page_shows_the_champions_signatures_and_fails_visibly_when_the_record_changed(
    trained_dataset, model_admin, auditor
):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")
    url = reverse("models_app:overview", args=[trained_dataset.pk])

    page = login(model_admin).get(url).content.decode()
    assert f'aria-label="Signatures on v{champion.version}"' in page
    assert 'data-signature="approval"' in page and 'data-signature-check="verified"' in page

    evaluation = Evaluation.objects.get(training_run=champion.training_run, role="candidate")
    Evaluation.objects.filter(pk=evaluation.pk).update(metrics={**evaluation.metrics, "accuracy": 0.123})
    changed = login(auditor).get(url).content.decode()
    assert 'data-signature-check="record_changed"' in changed and "record changed since signing" in changed


def test_a_runs_page_shows_its_candidates_signatures(trained_dataset, model_admin):
    champion = ModelVersion.objects.get(dataset=trained_dataset, stage="champion")

    page = login(model_admin).get(reverse("models_app:run_detail", args=[champion.training_run_id])).content.decode()

    assert f'aria-label="Signatures on v{champion.version}"' in page and 'data-signature-check="verified"' in page
