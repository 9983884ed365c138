"""The retraining policy picks the model family and its hyperparameters (issue 9, point 1): checked by field,
audited with what changed, copied onto each run it queues; the web process never imports torch for it."""

from __future__ import annotations

import subprocess
import sys

from django.urls import reverse

from governance.models import AuditEvent
from models_app.models import RetrainingPolicy, TrainingRun
from models_app.services import training_run_request
from tests.conftest import login

_FORM = {
    "enabled": "on",
    "new_gold_labels": "12",
    "schedule_hours": "24",
    "algorithm": "hist_gradient_boosting",
    "hyperparameters": '{"learning_rate": 0.05, "max_iter": 50}',
    "min_class_examples": "3",
    "mode": "full",
    "replay_fraction": "0.5",
}


def _post(client, dataset, **changes):  # type: ignore[no-untyped-def]
    return client.post(reverse("models_app:policy", args=[dataset.pk]), {**_FORM, **changes})


def test_a_model_admin_picks_the_family_and_its_hyperparameters_and_the_next_run_copies_them(
    trained_dataset, model_admin
):
    response = _post(login(model_admin), trained_dataset)

    assert response.status_code == 302
    policy = RetrainingPolicy.objects.get(dataset=trained_dataset)
    assert (policy.algorithm, policy.schedule_hours, policy.min_class_examples) == ("hist_gradient_boosting", 24, 3)
    # Validated and completed with the family's defaults, so a run later sees exactly what it will use.
    assert policy.hyperparameters["learning_rate"] == 0.05 and policy.hyperparameters["max_leaf_nodes"] == 31
    event = AuditEvent.objects.filter(action="retraining_policy.updated").latest("seq")
    assert event.after["algorithm"] == "hist_gradient_boosting" and event.before["algorithm"] == "logistic_regression"

    run = training_run_request(dataset=trained_dataset, trigger="manual", requested_by=model_admin, dispatch=False)
    assert (run.algorithm, run.hyperparameters, run.min_class_examples) == (
        "hist_gradient_boosting",
        policy.hyperparameters,
        3,
    )


def test_bad_values_are_refused_next_to_their_field_and_nothing_changes(trained_dataset, model_admin):
    client = login(model_admin)
    before = RetrainingPolicy.objects.get(dataset=trained_dataset).algorithm
    events = AuditEvent.objects.count()

    cases = {
        "hyperparameters": ({"hyperparameters": '{"learning_rate": '}, "Not valid JSON"),
        "hyperparameters ": ({"hyperparameters": '{"depth": 3}'}, "Unknown hyperparameter(s): depth"),
        "hyperparameters  ": ({"hyperparameters": '{"learning_rate": 7}'}, "learning_rate must be between"),
        "new_gold_labels": ({"new_gold_labels": "many"}, "is not a whole number"),
        "replay_fraction": ({"replay_fraction": "1"}, "below 1"),
        "algorithm": ({"algorithm": "xgboost"}, "Unknown algorithm"),
    }
    for field, (changes, message) in cases.items():
        response = _post(client, trained_dataset, **changes)
        page = response.content.decode()
        assert response.status_code == 400, field
        assert f'id="policy-{field.strip()}-error"' in page or field.strip() == "algorithm", field
        assert message in page, (field, message)

    assert RetrainingPolicy.objects.get(dataset=trained_dataset).algorithm == before
    assert AuditEvent.objects.count() == events


def test_the_form_lists_every_family_and_what_it_takes(trained_dataset, model_admin, auditor):
    page = login(model_admin).get(reverse("models_app:overview", args=[trained_dataset.pk])).content.decode()
    for name in ("logistic_regression", "hist_gradient_boosting", "tfidf_logistic_regression", "torch_mlp"):
        assert f'value="{name}"' in page
    assert "<code>fine_tune_epochs</code>" in page
    assert (
        "Change the retraining policy"
        not in login(auditor).get(reverse("models_app:overview", args=[trained_dataset.pk])).content.decode()
    )


def test_listing_and_validating_the_families_does_not_import_torch():
    code = (
        "import sys; from models_app.ml.algorithms.catalogue import catalogue; "
        "from models_app.ml.algorithms.base import params_validate; c = catalogue(); "
        "params_validate(c['torch_mlp'].hyperparameters, {'epochs': 3}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_run_trains_the_family_its_policy_named(trained_dataset, model_admin):
    RetrainingPolicy.objects.filter(dataset=trained_dataset).update(
        algorithm="hist_gradient_boosting", hyperparameters={"max_iter": 20}
    )
    from models_app.training import training_run_execute

    run = training_run_request(dataset=trained_dataset, trigger="manual", requested_by=model_admin, dispatch=False)
    version = training_run_execute(run_id=run.pk)

    assert version is not None, TrainingRun.objects.get(pk=run.pk).error
    assert version.algorithm == "hist_gradient_boosting"
    info = version.fit_info
    assert info["params"]["max_iter"] == 20 and info["seed"] == run.seed and info["code_version"]
    assert "scikit-learn" in info["library_versions"] and info["calibration"] in ("none", "sigmoid", "temperature")
    assert version.metrics["holdout"]["n"] == 20
